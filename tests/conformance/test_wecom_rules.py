"""WeCom rules through the HTTP path against the simulated WeCom: the WeChat plug-in (W3), task
ids unique per app across deployments (W6) and UTF-8 bodies with byte limits (W8)."""

from __future__ import annotations

from pathlib import Path

from bot.app import create_app
from bot.context import CTX
from store.db import create_engine
from store.migrate import upgrade
from store.outbox import NewOutboxItem
from tests.conftest import AUTH
from tests.e2e.conftest import deliver, e2e_settings, start_leadbot

REPS = [{"id": "r1", "name": "张三", "wecom_userid": "zhangsan", "team": "华东", "role": "rep"}]


async def test_plugin_reader_gets_every_lead_in_a_form_they_can_act_on(aiohttp_client, engine, clock, store,
                                                                        wecom) -> None:
    """W3: the plug-in shows a template card as a placeholder and message/send still answers 0;
    with the default profile the rep also gets the text copy with the H5 link."""
    await store.import_reps(REPS)  # no delivery column: the default profile
    wecom.use_wechat_plugin("zhangsan")
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    await cli.post("/api/v1/leads", json={"name": "孙丽", "phone": "13911112222"}, headers=AUTH)
    await deliver(cli)
    inbox = wecom.messages_for("zhangsan")
    assert any(m.get("unshown") == "template_card" for m in inbox)  # what the plug-in made of the card
    texts = [m["content"]["content"] for m in inbox if m["msgtype"] == "text" and not m.get("unshown")]
    assert any("孙丽" in t and "http://leadbot.test/a/" in t for t in texts), texts


async def test_a_second_deployment_on_the_same_app_never_repeats_a_task_id(aiohttp_client, engine, clock, store,
                                                                          wecom, tmp_path: Path) -> None:
    """W6: staging and production (or a reset database) on one WeCom app make the same outbox
    keys; WeCom shows nothing for a task_id it has seen. Ids carry each database's deployment id,
    so both cards arrive."""
    reps = [{**REPS[0], "delivery": "card"}]
    await store.import_reps(reps)
    first = await start_leadbot(aiohttp_client, engine, clock, wecom)
    other_engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/staging.db")
    try:
        await upgrade(other_engine)
        from crm.sql_store import SqlCRMStore

        await SqlCRMStore(other_engine, clock).import_reps(reps)
        second_app = create_app(e2e_settings(wecom.base_url), clock=clock, engine=other_engine, start_workers=False)
        second = await aiohttp_client(second_app)
        for cli in (first, second):
            await cli.post("/api/v1/leads", json={"name": "周强", "phone": "13633334444"}, headers=AUTH)
            await deliver(cli)
        cards = [m for m in wecom.messages_for("zhangsan") if m["msgtype"] == "template_card"]
        assert len(cards) == 2 and cards[0]["task_id"] != cards[1]["task_id"]
        assert wecom.repeated_task_ids == []
        await second_app[CTX].services.delivery_worker.stop()
    finally:
        await other_engine.dispose()


async def test_long_chinese_text_arrives_whole_with_its_link(aiohttp_client, engine, clock, store, wecom) -> None:
    """W8: WeCom counts text content in bytes as sent. Sent as UTF-8, leadbot's 2048-byte text
    (cut by leadbot, the link kept last) arrives whole; as \\u escapes it would be cut, link and all."""
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    outbox = cli.app[CTX].services.outbox
    link = "http://leadbot.test/a/TOKEN123"
    body = "客户留言：" + "我们需要一套覆盖华东区的销售管理方案，" * 40
    await outbox.enqueue(NewOutboxItem(key="long:1", channel="wecom", kind="text", recipient="zhangsan",
                                       payload={"text": body, "link": link}, urgent=True))
    await deliver(cli)
    [msg] = [m for m in wecom.messages_for("zhangsan") if m["msgtype"] == "text"]
    assert msg["content"]["content"].endswith(link)
    assert len(msg["content"]["content"].encode("utf-8")) <= 2048
