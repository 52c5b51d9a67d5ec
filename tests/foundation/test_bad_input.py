"""Bad input gets a 4xx naming the problem, never a 5xx; nothing acknowledged is lost (issue 18)."""

from __future__ import annotations

import json
from urllib.parse import quote_from_bytes

from bot.context import CTX
from tests.conftest import AUTH

JSON = {**AUTH, "Content-Type": "application/json"}


async def _post(client, body: bytes | str, headers=None):
    resp = await client.post("/api/v1/leads", data=body if isinstance(body, bytes) else body.encode(),
                             headers=headers or JSON)
    return resp.status, await resp.json()


async def _read(client, lead_id):
    resp = await client.get(f"/api/v1/leads/{lead_id}", headers=AUTH)
    assert resp.status == 200
    return json.loads(await resp.text())  # strict: NaN would not parse back in other languages


async def test_an_amount_of_400_digits_is_kept_and_flagged(client) -> None:
    digits = "9" * 400
    status, lead = await _post(client, f'{{"name": "大数", "amount": {digits}}}')
    assert status == 201
    got = await _read(client, lead["id"])
    assert got["amount"] is None and "amount_invalid" in got["flags"]
    assert got["extra"]["amount"] == int(digits)


async def test_nan_and_infinity_are_refused_not_stored(client) -> None:
    for literal in ("NaN", "Infinity", "-Infinity", "1e400"):
        status, body = await _post(client, f'{{"name": "x", "amount": {literal}}}')
        assert status == 400, literal
        assert "NaN" in body["message"] or "JSON" in body["message"]
    for text in ("NaN", "inf", "1e400"):  # as text: kept as given, not turned into a float
        status, lead = await _post(client, json.dumps({"name": "x", "budget": text}))
        assert status == 201
        got = await _read(client, lead["id"])
        assert got["amount"] is None and got["extra"]["amount"] == text


async def test_lead_ids_that_are_not_ascii_digits_are_404(client) -> None:
    for raw in ("²", "١٢", "99999999999999999999999", "%00", "-1"):
        resp = await client.get(f"/api/v1/leads/{raw}", headers=AUTH)
        assert resp.status == 404, raw


async def test_an_empty_lead_is_refused(client) -> None:
    for body in ("{}", '{"name": "", "phone": null}'):
        status, err = await _post(client, body)
        assert status == 400 and "no fields" in err["message"]


async def test_gbk_form_needs_its_charset_and_then_keeps_every_character(client) -> None:
    name = "王小明"
    form = f"name={quote_from_bytes(name.encode('gbk'))}&company={quote_from_bytes('上海某某'.encode('gbk'))}"
    status, err = await _post(client, form, {**AUTH, "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and "charset" in err["message"]
    status, lead = await _post(client, form, {**AUTH, "Content-Type": "application/x-www-form-urlencoded; charset=gbk"})
    assert status == 201
    got = await _read(client, lead["id"])
    assert got["name"] == name and got["company"] == "上海某某"


async def test_long_values_are_kept_whole_even_when_an_alias_used_the_key(client) -> None:
    long_company = "某" * 300
    channel = "c" * 100
    status, lead = await _post(client, json.dumps({"company_name": long_company, "company": "短名",
                                                  "utm_source": channel}, ensure_ascii=False))
    assert status == 201
    got = await _read(client, lead["id"])
    assert got["company"] == long_company[:256] and "company_truncated" in got["flags"]
    assert sorted([got["extra"]["company"], got["extra"]["company~2"]]) == sorted(["短名", long_company])
    assert got["source_channel"] == channel[:64] and got["extra"]["utm_source"] == channel


async def test_a_pool_timeout_is_503_with_retry_after(client) -> None:
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    async def saturated(lead_id):
        raise PoolTimeout("QueuePool limit of size 5 overflow 10 reached")

    client.app[CTX].store.get_lead = saturated
    resp = await client.get("/api/v1/leads/1", headers=AUTH)
    assert resp.status == 503 and resp.headers["Retry-After"] == "2"


async def test_a_value_the_database_refuses_is_4xx_not_503(client) -> None:
    """PostgreSQL's data exceptions (class 22: numeric out of range, NUL in text) are the
    request's fault: answering 503 made a source resend the same lead forever."""
    from sqlalchemy.exc import DBAPIError

    class Orig(Exception):
        sqlstate = "22003"

    async def refuses(lead_id):
        raise DBAPIError("SELECT", {}, Orig("value out of range"))

    client.app[CTX].store.get_lead = refuses
    resp = await client.get("/api/v1/leads/1", headers=AUTH)
    assert resp.status == 422 and (await resp.json())["error"] == "unstorable"
