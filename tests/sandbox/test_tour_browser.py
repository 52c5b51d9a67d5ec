"""The guided tour on the sandbox page, walked in headless Chromium in Chinese and in English:
submit a lead, claim it, race a claim, fast-forward to an escalation, add a friend, merge and
undo. Each step is ticked off from what the page shows, and no screenshot's text carries a raw
code (a channel such as expo, a status such as on_leave, a reason such as sla_reassign)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
import pytest

from sandbox.demo import Demo

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT = 15_000
RAW_CODES = ["web_form", "expo", "baidu", "wechat_ad", "referral", "on_leave", "sticky_owner", "sla_reassign",
             "rep_left", "from_pool", "first_touch", "name_company",
             "weighted_round_robin", "least_loaded", "undefined", "null", "NaN", "[object Object]"]
STEP_WORDS = {"zh": {"intro": "欢迎来到 leadbot 沙盒", "finish": "完成"},
              "en": {"intro": "Welcome to the leadbot sandbox", "finish": "That's the tour"}}


@pytest.fixture
def async_playwright():
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"{CHROMIUM} is missing")
    return async_playwright


def raw_codes(text: str) -> list[str]:
    return [c for c in RAW_CODES if re.search(rf"(?<![A-Za-z_]){re.escape(c)}(?![A-Za-z_])", text)]


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_the_guided_tour_in_both_languages(async_playwright, tmp_path: Path, lang: str) -> None:
    demo = Demo(port=0, db_path=str(tmp_path / "demo.db"), language=lang)
    await demo.start()
    shots: list[Path] = []
    try:
        async with async_playwright() as p:
            try:
                browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            except Exception as e:  # noqa: BLE001 - a broken browser install is a skip
                pytest.skip(f"chromium does not start: {str(e).splitlines()[0][:200]}")
            try:
                page = await browser.new_page(viewport={"width": 1600, "height": 1100},
                                              locale="zh-CN" if lang == "zh" else "en-US")
                page.set_default_timeout(TIMEOUT)
                errors: list[str] = []
                missing: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
                await page.goto(demo.url)
                tour = page.locator("#tour")

                async def shot(name: str) -> None:
                    await page.wait_for_timeout(300)  # let the pushed state render
                    path = tmp_path / f"tour-{lang}-{len(shots):02d}-{name}.png"
                    await page.screenshot(path=str(path), full_page=True)
                    shots.append(path)
                    text = await page.evaluate("document.body.innerText")
                    assert not raw_codes(text), (name, [text[max(0, m.start() - 80):m.end() + 40] for c in raw_codes(text) for m in re.finditer(re.escape(c), text)])

                async def step(name: str) -> None:
                    await page.click("#tour-next")
                    await page.locator(f'#tour[data-step="{name}"]').wait_for()

                async def done(name: str) -> None:
                    await page.locator(f'#tour[data-step="{name}"][data-done="1"]').wait_for()
                    await shot(name)

                # A first visit opens the tour: what the page is, and how its clock behaves.
                await page.locator('#tour[data-step="intro"]').wait_for()
                intro = await tour.inner_text()
                assert STEP_WORDS[lang]["intro"] in intro
                assert ("4 分钟" in intro and "查看详情" in intro) if lang == "zh" else \
                    ("4 min" in intro and "real time" in intro and "Details" in intro)
                await shot("intro")

                await step("submit")
                await page.click("#submit-lead")
                await done("submit")

                await step("claim")
                await page.locator('.phone button[data-action="claim"]').first.click()
                await done("claim")

                # Two reps tap 认领 on the same pool card: one wins, the other is told who did.
                await step("race")
                await page.click('[data-preset="pool"]')
                await page.click("#submit-lead")
                wang = page.locator('.phone[data-rep="r-wang"] button[data-action="claim"]')
                li = page.locator('.phone[data-rep="r-li"] button[data-action="claim"]')
                await wang.wait_for()
                await li.wait_for()
                await wang.click()
                await done("race")
                claimed_by = "已被 王芳 认领" if lang == "zh" else "Claimed by 王芳"
                await page.locator('.phone[data-rep="r-li"] .wc-card', has_text=claimed_by).wait_for()

                await step("escalate")
                await page.click('[data-preset="north"]')
                await page.click("#submit-lead")
                await page.locator("#lead-result[data-status='201']").wait_for()
                await page.click('[data-advance="300"]')
                await done("escalate")
                # The group's markdown shows its headline once (DingTalk keeps the title for the preview).
                bubbles = page.locator('.phone.group .bubble[data-kind="markdown"]')
                assert await bubbles.count() >= 1
                for i in range(await bubbles.count()):
                    text = (await bubbles.nth(i).inner_text()).strip()
                    assert text.count(text.splitlines()[0]) == 1, text

                await step("friend")
                await page.click("#friend-btn")
                await done("friend")

                await step("merge")
                await page.click('[data-preset="dup"]')
                await page.click("#submit-lead")
                merge = page.locator('.phone button[data-action="merge"]').first
                await merge.wait_for()
                await merge.click()
                undo = page.locator('.phone button[data-action="undo"]').first
                await undo.wait_for()
                await undo.click()
                await done("merge")

                # What surrounds leadbot's messages on a phone is in the sandbox's language too (the
                # names and places in the seed data are Chinese in both).
                chrome = await page.evaluate("""[...document.querySelectorAll(
                    '[data-i18n], .phone .conv, .phone .role, .phone .tags .tag, .phone .empty, .phone .composer button, '
                    + '#lead-result')]
                    .map((e) => e.textContent).concat([...document.querySelectorAll('.phone .chat-input')]
                    .map((e) => e.placeholder))""")
                roles = ("经理", "销售") if lang == "zh" else ("manager", "rep")
                assert any(roles[0] in c for c in chrome) and any(roles[1] in c for c in chrome), chrome
                if lang == "en":
                    from sandbox import seed

                    teams = {r["team"] for r in seed.REPS if r.get("team")}
                    foreign = [c for c in chrome if re.search(r"[\u4e00-\u9fff]", re.sub("|".join(teams), "", c))]
                    assert not foreign, foreign
                else:
                    assert not [c for c in chrome if re.search(r"assistant|Message|Send|stored", c)], chrome

                await step("finish")
                assert STEP_WORDS[lang]["finish"] in await tour.inner_text()
                await shot("finish")
                await page.click("#tour-next")  # closes
                assert await tour.count() == 0

                icon = await page.request.get(demo.url + "favicon.ico")
                assert icon.status == 200 and icon.headers["content-type"].startswith("image/")
                assert not errors, errors
                assert not missing, missing
            finally:
                await browser.close()
    finally:
        await demo.stop()
    assert len(shots) == 8 and all(s.stat().st_size > 10_000 for s in shots)

