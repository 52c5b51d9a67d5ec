"""The directory calls of both clients against the simulated platforms: shapes, paging, errcodes."""

from __future__ import annotations

import pytest

from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.errors import DingTalkError
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.errors import WeComError
from leadbot.settings import DingTalkSettings
from tests.e2e.conftest import AGENT_ID, CORP_ID, SECRET


async def test_wecom_departments_and_members(wecom, clock) -> None:
    client = WeComClient(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, api_base=wecom.base_url, clock=clock)
    try:
        everything = await client.list_departments()
        assert [(d["id"], d["name"], d["parentid"]) for d in everything] == [
            (1, "示例科技", 0), (2, "华东销售", 1), (3, "华南销售", 1)]
        assert everything[1]["department_leader"] == ["zhou"]
        assert [d["id"] for d in await client.list_departments(3)] == [3]
        users = {u["userid"]: u for u in await client.list_department_users(3)}
        assert users["wu"]["is_leader_in_dept"] == [1] and users["wu"]["status"] == 1
        assert "mobile" not in users["wu"]  # none seeded: like an app created after 2022-06-20
        with pytest.raises(WeComError) as e:
            await client.list_department_users(99)
        assert e.value.errcode == 60123
    finally:
        await client.close()


async def test_dingtalk_departments_and_paged_members(dingtalk, clock) -> None:
    for i in range(7):
        dingtalk.add_member(f"dt_p{i}", f"成员{i}", [20])
    client = DingTalkClient(DingTalkSettings(**dingtalk.dingtalk_settings()), clock=clock)
    try:
        assert (await client.get_department(1))["name"] == "沙箱科技"
        subs = await client.list_sub_departments(1)
        assert [(d["dept_id"], d["name"], d["parent_id"]) for d in subs] == [(20, "华东销售", 1), (30, "华南销售", 1)]
        members = await client.list_department_users(20, page_size=3)
        assert len(members) == 8 and len({m["userid"] for m in members}) == 8
        assert len(dingtalk.calls_to("/topapi/v2/user/list")) == 3  # 3 + 3 + 2, following next_cursor
        zhang = next(m for m in members if m["userid"] == "dt_zhang")
        assert zhang["mobile"] == "13800000001" and zhang["leader"] is False and zhang["active"] is True
        leaders = [m["userid"] for m in await client.list_department_users(30) if m["leader"]]
        assert leaders == ["dt_wu"]
        with pytest.raises(DingTalkError) as e:
            await client.list_sub_departments(999)
        assert str(e.value.code) == "60003"
    finally:
        await client.close()


async def test_dingtalk_access_restricted_staff_are_listed(dingtalk, clock) -> None:
    """conformance D10 (suspected reading): user/list leaves out staff with restricted visibility
    unless asked with contain_access_limit; leadbot always asks, so directory sync never takes
    them for people who left."""
    dingtalk.add_member("dt_hidden", "保密成员", [20], access_limited=True)
    client = DingTalkClient(DingTalkSettings(**dingtalk.dingtalk_settings()), clock=clock)
    try:
        members = await client.list_department_users(20)
        assert "dt_hidden" in {m["userid"] for m in members}
        assert all(c.body.get("contain_access_limit") is True for c in dingtalk.calls_to("/topapi/v2/user/list"))
    finally:
        await client.close()
