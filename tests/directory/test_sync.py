"""`sync_directory` against the simulated WeCom and DingTalk directories."""

from __future__ import annotations

import pytest

from bot.context import CTX

from bot.platforms.directory import sync_directory
from tests.conftest import AUTH
from tests.directory.conftest import reps_by_id


async def test_first_sync_creates_teams_reps_and_managers(ctx, store) -> None:
    lines: list[str] = []
    report = await sync_directory(ctx, progress=lines.append)
    assert len(report.created) == 5 and not report.updated and not report.left and not report.rejected
    assert "wecom: 华东销售 (#2): 3 member(s)" in lines and "dingtalk: 华南销售 (#30): 2 member(s)" in lines
    reps = await reps_by_id(store)
    assert set(reps) == {"wecom:zhou", "wecom:zhangsan", "wecom:lisi", "wecom:wu", "dingtalk:dt_zhao"}
    teams = {t.name: t for t in await store.list_teams()}
    assert set(teams) == {"华东销售", "华南销售"}  # the empty root departments make no team
    zhou, wu = reps["wecom:zhou"], reps["wecom:wu"]
    assert (zhou.role, zhou.team, teams["华东销售"].manager_id) == ("manager", "华东销售", zhou.id)
    assert (wu.role, wu.team, teams["华南销售"].manager_id) == ("manager", "华南销售", wu.id)
    assert reps["wecom:lisi"].role == "rep" and reps["wecom:lisi"].manager_id == zhou.id
    assert reps["dingtalk:dt_zhao"].manager_id == wu.id and reps["dingtalk:dt_zhao"].team == "华南销售"
    assert all(r.status == "active" and r.weight == 1.0 for r in reps.values())


async def test_a_person_on_both_platforms_is_one_rep(ctx, store) -> None:
    report = await sync_directory(ctx)
    reps = await reps_by_id(store)
    # same mobile (written differently on the two platforms)
    assert (reps["wecom:zhangsan"].wecom_userid, reps["wecom:zhangsan"].dingtalk_userid) == ("zhangsan", "dt_zhang")
    # no mobile on either side: the exact same name in the same team
    assert (reps["wecom:wu"].wecom_userid, reps["wecom:wu"].dingtalk_userid) == ("wu", "dt_wu")
    reasons = {c.rep: c.reason for c in report.created}
    assert "same mobile" in reasons["wecom:zhangsan"] and "same name in team 华南销售" in reasons["wecom:wu"]
    assert len([r for r in reps.values() if r.name == "张三"]) == 1


async def test_same_name_is_not_enough_when_ambiguous_or_mobiles_differ(ctx, store, wecom, dingtalk) -> None:
    wecom.add_member("liqiang", "李强", [2], mobile="13900000001")
    dingtalk.add_member("dt_liqiang", "李强", [20], mobile="13900000002")  # same name, another mobile
    wecom.add_member("wangwei", "王伟", [3])
    dingtalk.add_member("dt_wangwei1", "王伟", [30])
    dingtalk.add_member("dt_wangwei2", "王伟", [30])  # two 王伟 in 华南 on DingTalk: cannot tell
    await sync_directory(ctx)
    reps = await reps_by_id(store)
    assert reps["wecom:liqiang"].dingtalk_userid is None and "dingtalk:dt_liqiang" in reps
    assert reps["wecom:wangwei"].dingtalk_userid is None
    assert {"dingtalk:dt_wangwei1", "dingtalk:dt_wangwei2"} <= set(reps)


async def test_second_sync_is_a_no_op(ctx, store) -> None:
    await sync_directory(ctx)
    before = {r.external_id: r for r in await store.list_reps()}
    again = await sync_directory(ctx)
    assert (len(again.created), len(again.updated), len(again.left), len(again.unchanged)) == (0, 0, 0, 5)
    assert {r.external_id: r for r in await store.list_reps()} == before


async def _lead_owned_by(leadbot, store, rep_id: int) -> int:
    for i in range(12):
        lead = await (await leadbot.post("/api/v1/leads", json={"name": f"客户{i}"}, headers=AUTH)).json()
        await leadbot.app[CTX].services.processor.drain()  # routing runs from the inbox
        if (await store.get_lead(lead["id"])).owner_id == rep_id:
            return lead["id"]
    raise AssertionError("no lead was routed to the rep")


@pytest.mark.parametrize("how", ["deleted", "disabled", "left"])
async def test_person_leaving_is_marked_left_and_their_open_lead_rerouted(leadbot, ctx, store, wecom, how) -> None:
    await sync_directory(ctx)
    lisi = (await reps_by_id(store))["wecom:lisi"]
    lead_id = await _lead_owned_by(leadbot, store, lisi.id)
    if how == "deleted":
        wecom.remove_member("lisi")
    else:
        wecom.members["lisi"]["status"] = 2 if how == "disabled" else 5
    report = await sync_directory(ctx)
    assert [c.rep for c in report.left] == ["wecom:lisi"]
    assert ("no longer in the WeCom directory" if how == "deleted" else "in WeCom") in report.left[0].reason
    assert report.rerouted >= 1
    assert (await store.get_rep(lisi.id)).status == "left"
    owner = (await store.get_lead(lead_id)).owner_id
    assert owner is not None and owner != lisi.id
    assert (await store.get_rep(owner)).status == "active"
    # Coming back (re-enabled): active again, without a second rep.
    if how != "deleted":
        wecom.members["lisi"]["status"] = 1
        back = await sync_directory(ctx)
        assert [c.rep for c in back.updated] == ["wecom:lisi"] and "back in the directory" in back.updated[0].reason
        assert (await store.get_rep(lisi.id)).status == "active"


async def test_dingtalk_only_rep_leaves_when_deleted_from_dingtalk(ctx, store, dingtalk) -> None:
    await sync_directory(ctx)
    dingtalk.remove_member("dt_zhao")
    report = await sync_directory(ctx)
    assert [c.rep for c in report.left] == ["dingtalk:dt_zhao"]
    # A rep on both platforms who is gone from one only stays.
    dingtalk.remove_member("dt_zhang")
    report = await sync_directory(ctx)
    assert not report.left
    assert (await store.rep_by_external_id("wecom:zhangsan")).status == "active"


async def test_hand_set_fields_survive_and_csv_reps_are_adopted(ctx, store, wecom) -> None:
    # A rep imported from CSV before the first sync: matched by userid, not duplicated.
    await store.import_reps([{"id": "r1", "name": "张三(老)", "wecom_userid": "zhangsan", "team": "老团队",
                              "role": "rep", "weight": "2.5", "capacity": "10", "regions": "上海;江苏",
                              "product_lines": "medical", "delivery": "text", "工号": "A001"}])
    await sync_directory(ctx)
    reps = await reps_by_id(store)
    assert "wecom:zhangsan" not in reps
    r1 = reps["r1"]
    assert (r1.name, r1.team, r1.dingtalk_userid) == ("张三", "华东销售", "dt_zhang")
    assert (r1.weight, r1.capacity, r1.regions, r1.product_lines, r1.delivery) == (
        2.5, 10, ("上海", "江苏"), ("medical",), "text")
    # Sales ops sets a weight by hand, then the person moves department: team changes, weight stays.
    await store.import_reps([{"id": "wecom:lisi", "name": "李四", "wecom_userid": "lisi", "team": "华东销售",
                              "weight": "3", "capacity": "5"}])
    wecom.members["lisi"].update(department=[3], main_department=3, is_leader_in_dept=[0])
    report = await sync_directory(ctx)
    assert [c.rep for c in report.updated] == ["wecom:lisi"] and "team 华东销售 → 华南销售" in report.updated[0].reason
    lisi = await store.rep_by_external_id("wecom:lisi")
    assert (lisi.team, lisi.weight, lisi.capacity, lisi.manager_id) == (
        "华南销售", 3.0, 5, (await store.rep_by_external_id("wecom:wu")).id)


async def test_on_leave_and_admin_set_by_hand_are_kept(ctx, store) -> None:
    await sync_directory(ctx)
    lisi = await store.rep_by_external_id("wecom:lisi")
    await store.set_rep_status(lisi.id, "on_leave", "test")
    await store.import_reps([{"id": "wecom:zhou", "name": "周经理", "wecom_userid": "zhou", "team": "华东销售",
                              "role": "admin"}])
    report = await sync_directory(ctx)
    assert not report.updated and not report.left
    assert (await store.get_rep(lisi.id)).status == "on_leave"
    assert (await store.rep_by_external_id("wecom:zhou")).role == "admin"


async def test_dry_run_changes_nothing(ctx, store, wecom) -> None:
    preview = await sync_directory(ctx, dry_run=True)
    assert len(preview.created) == 5 and "dry run" in preview.summary()
    assert list(await store.list_reps()) == [] and list(await store.list_teams()) == []
    await sync_directory(ctx)
    wecom.remove_member("lisi")
    preview = await sync_directory(ctx, dry_run=True)
    assert [c.rep for c in preview.left] == ["wecom:lisi"]
    assert (await store.rep_by_external_id("wecom:lisi")).status == "active"


async def test_one_platform_runs_and_root_department(ctx, store, wecom) -> None:
    report = await sync_directory(ctx, platforms=["dingtalk"])
    assert {c.rep for c in report.created} == {"dingtalk:dt_zhang", "dingtalk:dt_wu", "dingtalk:dt_zhao"}
    # A later WeCom-only run links WeCom people to those reps (same name, same team), leaves nobody.
    report = await sync_directory(ctx, platforms=["wecom"])
    assert not report.left and {c.rep for c in report.created} == {"wecom:zhou", "wecom:lisi"}
    assert {c.rep for c in report.updated} == {"dingtalk:dt_zhang", "dingtalk:dt_wu"}
    zhang = await store.rep_by_external_id("dingtalk:dt_zhang")
    assert (zhang.wecom_userid, zhang.dingtalk_userid, zhang.manager_id) == (
        "zhangsan", "dt_zhang", (await store.rep_by_external_id("wecom:zhou")).id)
    both = await sync_directory(ctx)
    assert not both.created and not both.left and len(both.unchanged) == 5, both.lines()
    # A sync scoped to one department never marks people outside it as left.
    wecom.remove_member("wu")
    scoped = await sync_directory(ctx, platforms=["wecom"], root_dept=2)
    assert not scoped.left and {d.dept_id for d in scoped.departments} == {2}


async def test_an_empty_directory_marks_nobody_left(ctx, store, wecom, dingtalk) -> None:
    await sync_directory(ctx)
    for userid in list(wecom.members):
        wecom.remove_member(userid)
    report = await sync_directory(ctx, platforms=["wecom"])
    assert not report.left and any("listed no members" in n for n in report.notes)


async def test_an_api_error_aborts_before_anything_is_written(ctx, store, dingtalk) -> None:
    from bot.platforms.dingtalk.errors import DingTalkError

    dingtalk.fail_next.append(("/topapi/v2/user/list", 200, {"errcode": 60011, "errmsg": "管理员权限不足"}))
    with pytest.raises(DingTalkError):
        await sync_directory(ctx)
    assert list(await store.list_reps()) == []


async def test_the_first_leader_stays_the_team_manager(ctx, store, wecom) -> None:
    wecom.departments[2]["department_leader"] = ["zhou", "qian"]
    wecom.add_member("qian", "钱副经理", [2])
    await sync_directory(ctx)
    zhou, qian = (await store.rep_by_external_id("wecom:zhou")), (await store.rep_by_external_id("wecom:qian"))
    assert qian.role == "manager" and qian.manager_id == zhou.id
    team = next(t for t in await store.list_teams() if t.name == "华东销售")
    assert team.manager_id == zhou.id
    wecom.members["qian"]["name"] = "钱经理"  # only the second leader changes
    report = await sync_directory(ctx)
    assert [c.rep for c in report.updated] == ["wecom:qian"]
    team = next(t for t in await store.list_teams() if t.name == "华东销售")
    assert team.manager_id == zhou.id
