"""A rep who leaves: open leads move to colleagues, old cards say so, the manager is told."""

from __future__ import annotations

from tests.conftest import AUTH
from tests.e2e.conftest import ctx_of, deliver, start_leadbot


async def test_leaving_rep_leads_are_rerouted_with_notice(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps([
        {"id": "m1", "name": "周经理", "wecom_userid": "zhou", "team": "华东", "role": "manager"},
        {"id": "r1", "name": "张三", "wecom_userid": "zhangsan", "team": "华东", "role": "rep", "manager": "m1"},
        {"id": "r2", "name": "李四", "wecom_userid": "lisi", "team": "华东", "role": "rep", "manager": "m1"},
    ])
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    ids = [(await (await cli.post("/api/v1/leads", json={"name": f"客户{i}"}, headers=AUTH)).json())["id"]
           for i in range(4)]
    await deliver(cli)
    zhangsan = await store.rep_by_external_id("r1")
    theirs = [i for i in ids if (await store.get_lead(i)).owner_id == zhangsan.id]
    assert theirs
    await store.set_rep_status(zhangsan.id, "left", "test")
    moved = await ctx_of(cli).services.flow.rep_left(zhangsan.id, "test")
    assert moved == len(theirs)
    await deliver(cli)
    lisi = await store.rep_by_external_id("r2")
    for lead_id in theirs:
        assert (await store.get_lead(lead_id)).owner_id == lisi.id
    manager_msgs = [m for m in wecom.messages_for("zhou")]
    assert any("张三" in str(m) and "重新分配" in str(m) for m in manager_msgs)
    updates = [c for c in wecom.calls_to("message/update_template_card")]
    assert len(updates) >= len(theirs)
