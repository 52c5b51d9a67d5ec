"""The text-mode rep's path: a plain notification whose link opens a working action page."""

from __future__ import annotations

import re

import aiohttp

from tests.conftest import AUTH


async def test_text_notification_reads_well_and_masks_the_phone(text_mode_lead) -> None:
    text = text_mode_lead["text"]
    first_line = text.splitlines()[0]
    assert "赵敏" in first_line
    assert "13900001111" not in text and "139****1111" in text


async def test_claim_from_the_page_then_the_page_shows_the_owned_view(text_mode_lead, store) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(text_mode_lead["link"]) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
            page = await resp.text()
        assert "赵敏" in page and "13900001111" not in page
        key = re.search(r'name="key" value="(claim:[^"]+)"', page).group(1)
        async with http.post(text_mode_lead["link"], data={"key": key}) as resp:
            after = await resp.text()
        assert 'data-code="claimed"' in after
        # The page (and its title) says the viewer has it now, not "新线索" as before the claim.
        title = re.search(r"<title>(.*?)</title>", after).group(1)
        assert title.startswith("你已认领") and "新线索" not in after
        assert "13900001111" in after  # the owner now sees the full number
        claimed = await store.get_lead(text_mode_lead["lead"]["id"])
        assert claimed.status == "claimed"
        # The same form sent again (double tap, back button) changes nothing.
        async with http.post(text_mode_lead["link"], data={"key": key}) as resp:
            assert 'data-code="already_yours"' in await resp.text()
    assert (await store.get_lead(claimed.id)).version == claimed.version


async def test_tampered_link_and_foreign_key_are_refused(text_mode_lead, store) -> None:
    link = text_mode_lead["link"]
    async with aiohttp.ClientSession() as http:
        async with http.get(link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")) as resp:
            assert resp.status == 403
        async with http.post(link, data={"key": "claim:forged.token"}) as resp:
            assert 'data-code="refused_malformed"' in await resp.text()
        # A real key for another lead pasted into this page is refused.
        async with http.post(text_mode_lead["base"] + "/api/v1/leads", json={"name": "other"}, headers=AUTH) as r:
            other = await r.json()
    lead = await store.get_lead(text_mode_lead["lead"]["id"])
    assert lead.status == "assigned"
    assert other["id"] != lead.id
