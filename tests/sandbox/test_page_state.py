"""What the sandbox page is given to show: a delivery leadbot gave up on appears on the phone it
was meant for and in the page's failure count (not only in the terminal), and a group robot's
image message (the digest chart) arrives as an image, not as base64 text."""

from __future__ import annotations

import base64
import hashlib

from datetime import datetime, timezone

from sandbox.demo import Demo, DemoClock

RAW = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
PNG = base64.b64encode(RAW).decode()


async def test_a_dead_letter_shows_on_its_phone_and_in_the_count(demo: Demo) -> None:
    demo.wecom.fail_next("message/send", 81013, times=50)  # every app message refused for good
    status, lead = await demo.submit_lead({"name": "周星", "phone": "13911112222", "channel": "expo",
                                           "region": "上海", "product_line": "CRM"})
    assert status == 201
    state = await demo.state()
    assert state["failures"]["dead"] >= 1
    failed = [p for p in state["phones"] if p["failed"]]
    assert failed and all(p["platform"] == "wecom" for p in failed)
    bubbles = [m for p in failed for m in p["messages"] if m["type"] == "failure"]
    assert bubbles and all("81013" in m["error"] and m["state"] == "dead" for m in bubbles)
    assert all(m["lead_id"] == lead["id"] for m in bubbles)
    # DingTalk phones got their copies: nothing failed there.
    assert not [p for p in state["phones"] if p["platform"] == "dingtalk" and p["failed"]]


async def test_a_robot_image_is_an_image(tmp_path) -> None:
    # A frozen weekday morning: started at the end of a working day, the demo's own daily digest
    # (a chart, also an image) would join the group at start-up and this would count two.
    demo = Demo(port=0, db_path=str(tmp_path / "demo.db"),
                clock=DemoClock(datetime(2026, 12, 2, 2, 0, tzinfo=timezone.utc)))  # Wed 10:00 Shanghai
    await demo.start()
    try:
        await _post_an_image(demo)
    finally:
        await demo.stop()


async def _post_an_image(demo: Demo) -> None:
    robot_key = next(iter(demo.wecom.robot_messages)) if demo.wecom.robot_messages else None
    from sandbox.demo import WECOM_ROBOT_KEY

    async with demo.http().post(f"{demo.wecom.base_url}/cgi-bin/webhook/send?key={robot_key or WECOM_ROBOT_KEY}",
                                json={"msgtype": "image", "image": {"base64": PNG, "md5": hashlib.md5(RAW).hexdigest()}}) as resp:
        assert (await resp.json())["errcode"] == 0
    state = await demo.state()
    images = [m for m in state["group"] if m["type"] == "image"]
    assert len(images) == 1, images
    assert images[0]["src"] == "data:image/png;base64," + PNG and images[0]["text"] == ""
    # Shown as an image, never as its base64 text.
    assert not [m for m in state["group"] if PNG in (m.get("text") or "")]
