"""The sandbox's HTTP API, without a browser: a lead through the real intake API lands as cards
on the right phones, a tap (a real encrypted WeCom callback) claims it and the other copies
change, the clock fast-forwards, and the routing playground explains 100 decisions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from sandbox import seed
from sandbox.demo import Demo, wecom_card_json

POOL_LEAD = {"name": "周星", "phone": "13911112222", "company": "上海新元科技有限公司", "region": "上海",
             "channel": "expo", "product_line": "CRM"}


def phone(state: dict, rep_id: str) -> dict:
    return next(p for p in state["phones"] if p["id"] == rep_id)


def cards(p: dict) -> list[dict]:
    return [m for m in p["messages"] if m["type"] in ("wecom_card", "dingtalk_card")]


async def test_page_and_static_files_are_served_locally(demo: Demo) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(demo.url) as r:
            html = await r.text()
            assert r.status == 200 and "leadbot" in html
        for path in ("static/app.js", "static/app.css"):
            async with s.get(demo.url + path) as r:
                assert r.status == 200, path
        # No CDN: every script and stylesheet the page loads is ours.
        assert "https://" not in html and 'src="http' not in html


async def test_pool_lead_claim_and_the_other_copies(demo: Demo) -> None:
    url = demo.url
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "api/leads", json=POOL_LEAD) as r:
            body = await r.json()
            assert body["status"] == 201, body
        lead_id = body["lead"]["id"]
        state = await (await s.get(url + "api/state")).json()
        # Expo leads go to 华东's pool: every active member gets a copy on their own platform.
        for rep_id in ("m-chen", "r-wang", "r-li"):
            (card,) = cards(phone(state, rep_id))
            assert card["type"] == "wecom_card" and "周星" in json.dumps(card["card"], ensure_ascii=False)
        (dt,) = cards(phone(state, "r-zhao"))
        assert dt["type"] == "dingtalk_card" and "周星" in dt["params"]["title"]
        texts = [m for m in phone(state, "r-liu")["messages"] if m["type"] == "text"]
        assert texts and f"{demo.leadbot_url}/a/" in texts[0]["text"]  # text mode: the H5 link
        link = next(w for w in texts[0]["text"].split() if w.startswith(f"{demo.leadbot_url}/a/"))
        async with s.get(link) as r:  # the H5 action page behind the link, served by leadbot
            assert r.status == 200 and "周星" in await r.text()
        assert not phone(state, "r-sun")["messages"]  # on leave
        assert not phone(state, "r-qian")["messages"]  # other team

        (mine,) = cards(phone(state, "r-wang"))
        claim = next(b["key"] for b in mine["card"]["button_list"] if b["key"].startswith("claim:"))
        async with s.post(url + "api/tap", json={"platform": "wecom", "userid": "wangfang", "key": claim,
                                                 "ref": mine["task_id"]}) as r:
            assert (await r.json())["status"] == 200
        state = await (await s.get(url + "api/state")).json()
        lead = next(x for x in state["leads"] if x["id"] == lead_id)
        assert lead["status"] == "claimed" and lead["owner"] == "王芳"
        assert "你已认领" in json.dumps(cards(phone(state, "r-wang"))[0]["card"], ensure_ascii=False)
        for rep_id in ("m-chen", "r-li"):
            assert "已被 王芳 认领" in json.dumps(cards(phone(state, rep_id))[0]["card"], ensure_ascii=False)
        assert "王芳" in cards(phone(state, "r-zhao"))[0]["params"]["title"]
        assert any("tapped claim" in line["text"] for line in state["log"])


async def test_the_sandbox_crm_follows_every_change_with_valid_signatures(demo: Demo) -> None:
    """Issue 12's reference receiver in the sandbox: leadbot's [crm_bridge] webhooks go to the
    page's own /sandbox/crm/webhook, which verifies each HMAC signature and mirrors the lead;
    a forged event is refused and shown with ✗."""
    assert demo.settings.crm_bridge.webhook_urls == (demo.crm_webhook_url,)
    assert demo.crm_webhook_url.startswith(demo.url.rstrip("/") + "/sandbox/crm/webhook")
    async with aiohttp.ClientSession() as s:
        lead_id = (await (await s.post(demo.url + "api/leads", json=POOL_LEAD)).json())["lead"]["id"]
        state = await (await s.get(demo.url + "api/state")).json()
        (mine,) = cards(phone(state, "r-wang"))
        claim = next(b["key"] for b in mine["card"]["button_list"] if b["key"].startswith("claim:"))
        await s.post(demo.url + "api/tap", json={"platform": "wecom", "userid": "wangfang", "key": claim,
                                                 "ref": mine["task_id"]})
        await demo.settle()  # drain the inbox and the outbox (webhooks included) once more
        crm = (await (await s.get(demo.url + "api/state")).json())["crm"]
        applied = [e for e in crm["events"][::-1] if e["entity"] == f"lead #{lead_id}"]
        assert [e["type"] for e in applied] == ["lead.created", "lead.pooled", "lead.claimed"], applied
        assert all(e["verified"] and e["outcome"] == "applied" for e in applied)
        assert [e["version"] for e in applied] == sorted(e["version"] for e in applied)
        (mirrored,) = [row for row in crm["leads"] if row["id"] == lead_id]
        assert mirrored["name"] == "周星" and mirrored["owner"] == "王芳" and mirrored["status"] == "claimed"
        assert mirrored["version"] == applied[-1]["version"] and crm["refused"] == 0

        assert (await (await s.post(demo.url + "api/crm/forge", json={})).json())["status"] == 401
        crm = (await (await s.get(demo.url + "api/state")).json())["crm"]
    assert crm["refused"] == 1 and crm["events"][0]["verified"] is False
    assert next(r for r in crm["leads"] if r["id"] == lead_id)["name"] == "周星"  # the forgery changed nothing


async def test_region_rule_routes_to_the_north_team(demo: Demo) -> None:
    async with aiohttp.ClientSession() as s:
        r = await s.post(demo.url + "api/leads", json={"name": "马云飞", "phone": "13711112222", "region": "北京",
                                                       "channel": "baidu", "医院等级": "三级甲等"})
        lead = (await r.json())["lead"]
        assert lead["extra"] == {"医院等级": "三级甲等"}
        state = await (await s.get(demo.url + "api/state")).json()
    owner = next(x for x in state["leads"] if x["id"] == lead["id"])["owner"]
    assert owner in ("钱伟", "吴婷")
    rep_id = {"钱伟": "r-qian", "吴婷": "r-wu"}[owner]
    (card,) = cards(phone(state, rep_id))
    assert "马云飞" in card["params"]["title"]


async def test_fast_forward_friend_and_text_command(demo: Demo) -> None:
    async with aiohttp.ClientSession() as s:
        before = demo.clock.now()
        r = await s.post(demo.url + "api/advance", json={"seconds": 300})
        assert r.status == 200
        assert (demo.clock.now() - before).total_seconds() >= 300
        assert (await s.post(demo.url + "api/advance", json={"seconds": -5})).status == 400
        r = await s.post(demo.url + "api/friend", json={"userid": "wangfang", "friend": 0})
        assert (await r.json())["status"] == 200
        r = await s.post(demo.url + "api/text", json={"platform": "wecom", "userid": "wangfang", "text": "帮助"})
        assert (await r.json())["status"] == 200
        state = await (await s.get(demo.url + "api/state")).json()
    assert any(m["type"] == "text" for m in phone(state, "r-wang")["messages"])  # the help answer


async def test_events_stream_pushes_the_state(demo: Demo) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(demo.url + "api/events") as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            line = await r.content.readline()
            assert line.startswith(b"event: state")
            data = await r.content.readline()
            assert json.loads(data[len(b"data: "):])["phones"]


async def test_routing_playground(demo: Demo) -> None:
    async with aiohttp.ClientSession() as s:
        sample = (await (await s.get(demo.url + "api/routing")).json())["config"]
        r = await s.post(demo.url + "api/routing", json={"config": sample, "count": 100})
        res = await r.json()
        assert r.status == 200 and res["ok"] and res["count"] == 100
        targets = dict(res["by_target"])
        assert targets.get("华东 公海", 0) > 0 and "孙丽" not in targets  # on leave: never chosen
        north = [row for row in res["rows"] if row["region"] in ("北京", "天津", "河北") and row["channel"] != "expo"]
        assert north and all(row["target"] in ("钱伟", "吴婷") for row in north)
        assert all(row["explanation"] for row in res["rows"])
        r = await s.post(demo.url + "api/routing", json={"config": "[assignment\nrules = 1", "count": 5})
        assert r.status == 400 and "TOML" in (await r.json())["error"]
        r = await s.post(demo.url + "api/routing", json={"config": '[assignment]\ndefault_strategy = "nope"'})
        assert r.status == 400 and "default_strategy" in (await r.json())["error"]


def test_passive_reply_cards_render_like_sent_ones() -> None:
    xml_shape = {"CardType": "button_interaction", "MainTitle": {"Title": "你已认领：周星"},
                 "HorizontalContentList": {"KeyName": "来源", "Value": "expo", "Type": "1", "Url": "http://x"},
                 "ButtonList": {"Button": [{"Text": "推进", "Style": "1", "Key": "advance:t"}]}}
    card = wecom_card_json(xml_shape)
    assert card["card_type"] == "button_interaction" and card["main_title"]["title"] == "你已认领：周星"
    assert card["horizontal_content_list"] == [{"keyname": "来源", "value": "expo", "type": 1, "url": "http://x"}]
    assert card["button_list"] == [{"text": "推进", "style": 1, "key": "advance:t"}]
    sent = {"card_type": "text_notice", "main_title": {"title": "x"}}
    assert wecom_card_json(sent) is sent


def test_seed_has_every_kind_of_rep() -> None:
    reps = seed.REPS
    assert any(r.get("wecom_userid") for r in reps) and any(r.get("dingtalk_userid") for r in reps)
    assert any(r["delivery"] == "text" for r in reps) and any(r["status"] == "on_leave" for r in reps)
    assert any(r["role"] == "manager" for r in reps)
    phones = [c["phone"].replace(" ", "").replace("-", "")[-11:] for c in seed.CUSTOMERS if c.get("phone")]
    assert len(set(phones)) < len(phones)  # duplicates to find


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_leadbot_demo_command_prints_the_url_and_cleans_up(tmp_path: Path, signum: int) -> None:
    """README's first command: `leadbot demo` brings the sandbox up and prints the URL; Ctrl+C and
    SIGTERM (a service manager, `kill`) both stop it and remove its temporary database folder."""
    exe = Path(sys.executable).parent / "leadbot"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen([str(exe), "demo", "--port", "0"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp)})
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        assert "open http://127.0.0.1:" in first, (first, proc.stderr.read() if proc.poll() is not None else "")
        url = first.rsplit("open ", 1)[1].strip()
        import urllib.request

        with urllib.request.urlopen(url + "api/state", timeout=10) as resp:
            assert json.loads(resp.read())["phones"]
        assert [p.name.startswith("leadbot-demo-") for p in tmp.iterdir()] == [True]
    finally:
        proc.send_signal(signum)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert not list(tmp.iterdir())  # the demo database's temporary folder is gone
    tmp.rmdir()
    assert not list(tmp_path.iterdir())  # the demo database lives in a temporary folder


def test_a_killed_demos_folder_is_swept_by_the_next_one(tmp_path: Path) -> None:
    """SIGKILL cannot be handled: the next demo removes folders whose process is gone."""
    from sandbox.demo import TMP_PREFIX, sweep_stale_folders

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    gone = tmp_path / f"{TMP_PREFIX}gone"
    gone.mkdir()
    (gone / "pid").write_text(dead)
    (gone / "leadbot-demo.db").write_bytes(b"x")
    alive = tmp_path / f"{TMP_PREFIX}alive"
    alive.mkdir()
    (alive / "pid").write_text(str(os.getpid()))
    unknown = tmp_path / f"{TMP_PREFIX}unknown"
    unknown.mkdir()
    assert sweep_stale_folders(str(tmp_path)) == [str(gone)]
    assert not gone.exists() and alive.exists() and unknown.exists()


async def test_faults_panel_switches_a_410100_and_leadbot_rides_it_out(demo: Demo) -> None:
    """Item 3 of #19: the page switches a documented throttle on (DingTalk custom robot 410100),
    shows what leadbot holds back, and the message arrives once the fault is off and the
    10-minute block is over."""
    async with aiohttp.ClientSession() as s:
        async with s.get(demo.url + "api/faults") as r:
            listed = await r.json()
        names = {(f["platform"], f["name"]) for f in listed["faults"]}
        assert ("dingtalk", "robot_410100") in names and ("wecom", "app_45009") in names
        async with s.post(demo.url + "api/faults", json={"platform": "dingtalk", "name": "robot_410100", "on": True}) as r:
            after = await r.json()
        assert next(f for f in after["faults"] if f["name"] == "robot_410100")["on"] is True
        async with s.post(demo.url + "api/faults", json={"platform": "dingtalk", "name": "nope", "on": True}) as r:
            assert r.status == 400
    from store.outbox import NewOutboxItem

    hook = demo.settings.dingtalk.manager_robot_webhook
    await demo.ctx.services.outbox.enqueue(NewOutboxItem(key="faults:1", channel="dingtalk_robot", kind="robot",
                                                            recipient=hook, payload={"text": "超时：测试"}, urgent=True))
    await demo.settle()
    waiting = (await demo.faults())["waiting"]
    assert waiting and "410100" in waiting[0]["error"]
    assert not any("超时：测试" in str(m) for m in demo.dingtalk.group_messages)
    await demo.set_fault("dingtalk", "robot_410100", False)
    await demo.advance(601)
    assert any("超时：测试" in str(m) for m in demo.dingtalk.group_messages)


async def test_the_page_reads_times_in_the_calendars_zone(tmp_path: Path) -> None:
    """[calendar] timezone from the admin's file sets the page's clock, its zone label and the time on
    each message (the cards' own times use it too): nothing on the page is pinned to Beijing."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    own = tmp_path / "config.toml"
    own.write_text('[calendar]\ntimezone = "Europe/Berlin"\n', encoding="utf-8")
    demo = Demo(port=0, db_path=str(tmp_path / "demo.db"), config_path=str(own))
    await demo.start()
    try:
        async with aiohttp.ClientSession() as s:
            await s.post(demo.url + "api/leads", json=POOL_LEAD)
            state = await (await s.get(demo.url + "api/state")).json()
    finally:
        await demo.stop()
    assert state["timezone"] == "Europe/Berlin"
    shown = datetime.strptime(state["now_local"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Europe/Berlin"))
    assert abs((shown - datetime.fromisoformat(state["now"])).total_seconds()) < 2
    msg = next(m for p in state["phones"] for m in p["messages"] if m["type"] == "wecom_card")
    assert msg["time"] == datetime.fromisoformat(msg["at"]).astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M")
