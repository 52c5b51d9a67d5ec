"""What a WeCom friend-add does besides matching, when configured: the CRM name written back as
the friend's remark (through the outbox) and a welcome message with the event's welcome code."""

from __future__ import annotations

from datetime import timedelta

from store.models import OutboxItem
from tests.conftest import AUTH
from tests.e2e.conftest import deliver, start_leadbot
from tests.friends.conftest import count

REPS = [{"id": "r1", "name": "张三", "wecom_userid": "zhangsan", "team": "华东", "role": "rep"},
        {"id": "r2", "name": "李四", "wecom_userid": "lisi", "team": "华东", "role": "rep"}]


async def _known_friend(cli, store, wecom) -> str:
    """A known customer (a lead with a phone) adds the rep who does not own it; the rep only wrote
    the phone. Returns that rep's userid."""
    lead = await (await cli.post("/api/v1/leads", json={"name": "王小明", "phone": "13812345678",
                                                          "company": "华为技术有限公司"}, headers=AUTH)).json()
    await deliver(cli)
    owner = await store.get_rep((await store.get_lead(lead["id"])).owner_id)
    other = "lisi" if owner.wecom_userid == "zhangsan" else "zhangsan"
    wecom.seed_contact("wmXM001", name="小明🌟", follow_users=[{"userid": other, "remark_mobiles": ["13812345678"]}])
    first = await wecom.send_friend_added(other, "wmXM001")
    await wecom.resend(first)
    await deliver(cli)
    return other


def _follow(wecom, userid: str, external_userid: str) -> dict:
    return next(f for f in wecom.contacts[external_userid]["follow_user"] if f["userid"] == userid)


async def test_remark_written_back_when_configured(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, wecom={"write_back_remark": True})
    rep = await _known_friend(cli, store, wecom)
    follow = _follow(wecom, rep, "wmXM001")
    # conformance W4: the company remark reads back as remark_corp_name (a WeChat-user contact).
    assert follow["remark"] == "王小明" and follow["remark_corp_name"] == "华为技术有限公司"
    assert len(wecom.calls_to("externalcontact/remark")) == 1  # the resent event changed nothing
    assert wecom.ignored == []
    assert await count(engine, OutboxItem, OutboxItem.kind == "remark", OutboxItem.state == "sent") == 1


async def test_remark_is_cut_to_twenty_characters_and_sent_at_night(aiohttp_client, engine, clock, store,
                                                                     wecom) -> None:
    await store.import_reps(REPS)
    clock.advance(timedelta(hours=13))  # 23:00 in Shanghai: quiet hours hold messages, not remarks
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, wecom={"write_back_remark": True})
    await (await cli.post("/api/v1/leads", json={"name": "欧阳娜娜", "phone": "13700007777",
                                                   "company": "上海浦东新区某某某某国际贸易发展股份有限公司"},
                          headers=AUTH)).json()
    wecom.seed_contact("wmNN001", name="nana", follow_users=[{"userid": "lisi", "remark_mobiles": ["13700007777"]}])
    await wecom.send_friend_added("lisi", "wmNN001")
    await deliver(cli)
    follow = _follow(wecom, "lisi", "wmNN001")
    assert follow["remark"] == "欧阳娜娜"
    assert len(follow["remark_corp_name"]) == 20 and follow["remark_corp_name"].startswith("上海浦东新区")


async def test_no_remark_by_default(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    rep = await _known_friend(cli, store, wecom)
    assert _follow(wecom, rep, "wmXM001")["remark"] == ""
    assert wecom.calls_to("externalcontact/remark") == []
    assert await count(engine, OutboxItem, OutboxItem.kind == "remark") == 0


async def test_no_remark_for_a_new_customer(aiohttp_client, engine, clock, store, wecom) -> None:
    # The customer was made from what the rep wrote: nothing to write back.
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, wecom={"write_back_remark": True})
    wecom.seed_contact("wmNEW01", name="Lily", follow_users=[{"userid": "lisi", "remark": "林莉"}])
    await wecom.send_friend_added("lisi", "wmNEW01")
    await deliver(cli)
    assert wecom.calls_to("externalcontact/remark") == []


async def test_welcome_message_sent_once_with_the_code(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom,
                              wecom={"welcome_text": "您好，我是您的专属顾问，有任何问题随时找我。"})
    wecom.seed_contact("wmNEW01", name="Lily", follow_users=[{"userid": "lisi", "remark": "林莉"}])
    first = await wecom.send_friend_added("lisi", "wmNEW01")
    for _ in range(2):
        await wecom.resend(first)
    await deliver(cli)
    (sent,) = wecom.welcome_messages
    assert sent["external_userid"] == "wmNEW01" and sent["userid"] == "lisi"
    assert sent["text"].startswith("您好")
    assert len(wecom.calls_to("externalcontact/send_welcome_msg")) == 1


async def test_no_welcome_without_text_or_after_the_code_expired(aiohttp_client, engine, clock, store,
                                                                 wecom) -> None:
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    wecom.seed_contact("wmNEW01", name="Lily", follow_users=[{"userid": "lisi", "remark": "林莉"}])
    await wecom.send_friend_added("lisi", "wmNEW01")
    await deliver(cli)
    assert wecom.calls_to("externalcontact/send_welcome_msg") == []
    assert len(await store.list_leads()) == 1  # matched all the same

    late = await start_leadbot(aiohttp_client, engine, clock, wecom, wecom={"welcome_text": "您好"})
    wecom.seed_contact("wmNEW02", name="Tom", follow_users=[{"userid": "zhangsan", "remark": "唐明"}])
    await wecom.send_friend_added("zhangsan", "wmNEW02")
    clock.advance(timedelta(seconds=30))  # processed after the code died: no call that can only fail
    await deliver(late)
    assert wecom.calls_to("externalcontact/send_welcome_msg") == []
    assert len(await store.list_leads()) == 2


async def test_welcome_refused_is_logged_and_the_friend_still_matched(aiohttp_client, engine, clock, store,
                                                                     wecom) -> None:
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, wecom={"welcome_text": "您好"})
    wecom.seed_contact("wmNEW01", name="Lily", follow_users=[{"userid": "lisi", "remark": "林莉"}])
    await wecom.send_friend_added("lisi", "wmNEW01", welcome_code="WC-already-used")
    await deliver(cli)
    (call,) = wecom.calls_to("externalcontact/send_welcome_msg")
    assert wecom.welcome_messages == []
    assert len(await store.list_leads()) == 1


async def test_company_remark_only_for_wechat_user_contacts(aiohttp_client, engine, clock, store, wecom) -> None:
    """conformance W4: a WeCom-user contact (type 2) gets the name remark and no remark_company,
    which WeCom would accept and silently drop; the company reads back as remark_corp_name."""
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, wecom={"write_back_remark": True})
    await (await cli.post("/api/v1/leads", json={"name": "赵敏", "phone": "13900001111", "company": "明教科技"},
                          headers=AUTH)).json()
    await deliver(cli)
    wecom.seed_contact("wmZM002", name="赵敏", type=2, corp_name="明教科技",
                       follow_users=[{"userid": "lisi", "remark_mobiles": ["13900001111"]},
                                     {"userid": "zhangsan", "remark_mobiles": ["13900001111"]}])
    await wecom.send_friend_added("lisi", "wmZM002")
    await wecom.send_friend_added("zhangsan", "wmZM002")
    await deliver(cli)
    remarks = [c.body for c in wecom.calls_to("externalcontact/remark")]
    assert remarks and all(b["remark"] == "赵敏" and "remark_company" not in b for b in remarks)
    assert wecom.ignored == []  # nothing leadbot sent was dropped without effect
