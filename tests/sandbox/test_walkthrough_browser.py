"""`leadbot demo` walked in headless Chromium as a rep and a manager would (issue 17): claim ->
advance -> a gate and its evidence on the H5 page -> pass -> the ladder -> the manager's
reassign -> merge and undo. After each step every phone is photographed and what the phones
show is checked against the lead: no live 认领/放弃/改派/撤销 left where it no longer applies, the
stage on the owner's card, "reassigned to" where it went; and no delivery failed (no dead row,
no failure mark on any phone). Screenshots go to $LEADBOT_SHOTS when set, else tmp_path."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from sandbox.demo import Demo

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT = 15_000
CARD = ":is(.wc-card, .dt-card)"


@pytest.fixture
def async_playwright():
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"{CHROMIUM} is missing")
    return async_playwright


async def test_claim_advance_pass_ladder_reassign_merge_undo(async_playwright, tmp_path: Path) -> None:
    shots = Path(os.environ.get("LEADBOT_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    demo = Demo(port=0, db_path=str(tmp_path / "demo.db"))
    await demo.start()
    try:
        async with async_playwright() as p:
            try:
                browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            except Exception as e:  # noqa: BLE001 - a broken browser install is a skip
                pytest.skip(f"chromium does not start: {str(e).splitlines()[0][:200]}")
            try:
                page = await browser.new_page(viewport={"width": 1760, "height": 1300}, locale="zh-CN")
                page.set_default_timeout(TIMEOUT)
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(demo.url)
                await page.locator('.phone[data-rep="r-wang"]').wait_for()
                if await page.locator("#tour .tour-close").count():
                    await page.click("#tour .tour-close")
                step = [0]

                async def shot(name: str) -> None:
                    step[0] += 1
                    await page.wait_for_timeout(800)  # the pushed state renders
                    for phone in await page.locator(".phone").all():
                        rep = await phone.get_attribute("data-rep") or "group"
                        await phone.screenshot(path=str(shots / f"{step[0]:02d}-{name}-{rep}.png"))
                    # Nothing failed on its way to a phone (a dead letter shows on the phone it was for).
                    assert await page.locator(".phone .tag.fail, .failure-head").count() == 0, name

                def cards(name: str, rep: str | None = None):
                    where = f'.phone[data-rep="{rep}"] ' if rep else ".phone "
                    return page.locator(f"{where}{CARD}", has_text=name)

                async def buttons(name: str, action: str, rep: str | None = None) -> int:
                    return await cards(name, rep).locator(f'button[data-action="{action}"]').count()

                async def owner_of(name: str, action: str) -> str:
                    button = page.locator(f'.phone {CARD}:has-text("{name}") button[data-action="{action}"]').last
                    await button.wait_for()
                    return await page.locator(f'.phone:has({CARD}:has-text("{name}") button[data-action="{action}"])'
                                              ).last.get_attribute("data-rep") or ""

                async def tap(name: str, action: str, rep: str) -> None:
                    await cards(name, rep).locator(f'button[data-action="{action}"]').last.click()
                    await page.wait_for_timeout(600)

                async def submit(name: str, phone: str) -> None:
                    await page.fill('#lead-form input[name="name"]', name)
                    await page.fill('#lead-form input[name="phone"]', phone)
                    await page.fill('#lead-form [name="company"]', "")
                    await page.select_option('#lead-form [name="region"]', "上海")
                    await page.select_option('#lead-form [name="channel"]', "web_form")
                    await page.click("#submit-lead")
                    await page.locator("#lead-result[data-status='201']").wait_for()

                # Claim: the owner's card says 你已认领 with 推进阶段; nobody has 认领 left.
                await submit("高飞", "13911112222")
                owner = await owner_of("高飞", "claim")
                await shot("offer")
                await tap("高飞", "claim", owner)
                await cards("你已认领", owner).locator('button[data-action="advance"]').wait_for()
                assert await buttons("高飞", "claim") == 0
                await shot("claim")

                # Advance, then into a gate: the refusal links to the H5 page with the evidence form.
                await tap("高飞", "advance", owner)
                await cards("线索验证", owner).wait_for()
                await shot("advance")
                await tap("高飞", "advance", owner)
                refusal = page.locator(f'.phone[data-rep="{owner}"] a', has_text="去补充").last
                await refusal.wait_for()
                await shot("gate")
                h5 = await browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
                await h5.goto(await refusal.get_attribute("href") or "")
                await h5.fill("input[name='evidence.needs_document']", "https://docs.example.com/needs.pdf")
                await h5.click("button[data-action=advance]")
                await h5.wait_for_selector("#result[data-code=advanced]")
                await h5.screenshot(path=str(shots / "h5-evidence.png"), full_page=True)
                await h5.close()
                # The owner's card follows (on WeCom too): 痛点诊断, still with 推进阶段.
                await cards("你已认领", owner).filter(has_text="痛点诊断").wait_for()
                await shot("evidence")

                # Pass: the passer's card says so and offers nothing; the next rep is offered it.
                await submit("罗琳", "13922223333")
                first = await owner_of("罗琳", "pass")
                await tap("罗琳", "pass", first)
                await page.wait_for_timeout(800)
                second = await owner_of("罗琳", "pass")
                assert second != first
                assert await buttons("罗琳", "claim", first) == 0 and await buttons("罗琳", "pass", first) == 0
                await cards("已放弃", first).wait_for()
                await shot("pass")

                # The ladder: a reminder with 认领/稍后提醒, then the manager's escalation with 改派.
                await page.click('[data-advance="180"]')
                await cards("提醒", second).locator('button[data-action="snooze"]').wait_for()
                await shot("remind")
                await page.click('[data-advance="180"]')
                manager = await owner_of("罗琳", "reassign")
                assert manager == "m-chen"
                await shot("escalate")

                # The manager reassigns: the escalation stays one and says where it went; the
                # rep who lost it has nothing live left of it; the new owner is offered it.
                await tap("罗琳", "reassign", manager)
                await cards("已改派给", manager).wait_for()
                assert await buttons("罗琳", "reassign", manager) == 0
                # The new owner is neither the one it escalated from nor the rep who passed it; a
                # card rep sees 认领, a text rep (刘洋) the lead in plain text with its link.
                (moved,) = [lead for lead in (await demo.state())["leads"] if lead["name"] == "罗琳"]
                third = (await demo.ctx.store.get_rep(moved["owner_id"])).external_id
                assert third not in (first, second, manager), third
                await page.locator(f'.phone[data-rep="{third}"]:has-text("罗琳")').last.wait_for()
                for action in ("claim", "pass", "snooze"):
                    assert await buttons("罗琳", action, second) == 0, action
                await shot("reassign")

                # Merge and undo from the possible-duplicate card (a card rep gets it; the text
                # rep gets a link instead, so submit until a card rep has it).
                for _ in range(4):
                    await page.click('[data-preset="dup"]')
                    await page.click("#submit-lead")
                    await page.locator("#lead-result[data-status='201']").wait_for()
                    await page.wait_for_timeout(800)
                    if await page.locator('.phone button[data-action="merge"]').count():
                        break
                rep = await owner_of("王小明", "merge")
                await shot("duplicate")
                await tap("王小明", "merge", rep)
                await cards("已合并到", rep).locator('button[data-action="undo"]').wait_for()
                assert await buttons("王小明", "merge", rep) == 0
                await shot("merge")
                await tap("已合并到", "undo", rep)
                await cards("已撤销合并", rep).wait_for()
                assert await page.locator(f'.phone[data-rep="{rep}"] button[data-action="undo"]').count() == 0
                await shot("undo")
                assert not errors, errors
            finally:
                await browser.close()
    finally:
        await demo.stop()
    with sqlite3.connect(str(tmp_path / "demo.db")) as db:
        states = dict(db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
    assert states.get("dead", 0) == 0 and states.get("skipped", 0) == 0, states
