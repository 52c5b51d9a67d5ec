"""The text-mode rep opens the link on a phone-sized screen and claims the lead in the browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium_page

pytestmark = pytest.mark.browser
IPHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
          "user_agent": ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                         "(KHTML, like Gecko) Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh")}


async def test_claim_from_the_action_page_in_chromium(text_mode_lead, store, tmp_path: Path) -> None:
    async with chromium_page(**IPHONE) as page:
        await page.goto(text_mode_lead["link"])
        assert "赵敏" in await page.text_content("h1")
        assert "13900001111" not in await page.content()
        await page.click("button[data-action=claim]")
        await page.wait_for_selector("#result[data-code=claimed]")
        assert "13900001111" in await page.content()
        assert await page.is_visible("button[data-action=advance]")
        await page.screenshot(path=str(tmp_path / "h5.png"), full_page=True)
    lead = await store.get_lead(text_mode_lead["lead"]["id"])
    assert lead.status == "claimed"


async def test_advance_needs_its_evidence_in_the_browser(text_mode_lead, store) -> None:
    async with chromium_page(**IPHONE) as page:
        await page.goto(text_mode_lead["link"])
        await page.click("button[data-action=claim]")
        await page.wait_for_selector("#result[data-code=claimed]")
        await page.click("button[data-action=advance]")  # 线索验证 has no gate
        await page.wait_for_selector("#result[data-code=advanced]")
        await page.click("button[data-action=advance]")  # 痛点诊断 needs a needs document
        await page.wait_for_selector("#result[data-code=missing_evidence]")
        assert "需求文档" in await page.text_content("#result")
        await page.fill("input[name='evidence.needs_document']", "https://docs.example.com/needs.pdf")
        await page.click("button[data-action=advance]")
        await page.wait_for_selector("#result[data-code=advanced]")
    lead = await store.get_lead(text_mode_lead["lead"]["id"])
    assert lead.stage == "痛点诊断"
