"""The CRM API answers bad input with a 4xx naming the field, never a 5xx (issue 18)."""

from __future__ import annotations

from tests.crm_sync.conftest import CRM_AUTH


async def _put(cli, path: str, raw: str, headers=None):
    resp = await cli.put(path, data=raw.encode("utf-8"),
                         headers={**CRM_AUTH, "Content-Type": "application/json", **(headers or {})})
    return resp.status, await resp.json()


async def test_a_note_is_stored(crm) -> None:
    status, body = await _put(crm, "/api/v1/leads/N-1", '{"name": "张三", "note": "下周回电"}')
    assert status == 201 and body["lead"]["note"] == "下周回电"
    status, body = await _put(crm, "/api/v1/leads/N-1", '{"note": "已回电"}')
    assert status == 200 and body["changed"] == ["note"]


async def test_each_bad_value_is_a_4xx_naming_it(crm) -> None:
    await _put(crm, "/api/v1/leads/B-1", '{"name": "李四"}')
    cases = [
        ('{"name": "x", "version": Infinity}', None, "JSON"),
        ('{"name": "x", "version": 1e400}', None, "version"),
        ('{"name": "x"}', {"If-Match": '"Infinity"'}, "If-Match"),
        ('{"name": "x", "version": 99999999999999999999999}', None, "version"),
        ('{"owner": "\\ud800"}', None, "surrogate"),
        ('{"extra": {"score": NaN}}', None, "JSON"),
        ('{"amount": 1' + "0" * 400 + '}', None, "amount"),
    ]
    for raw, headers, named in cases:
        status, body = await _put(crm, "/api/v1/leads/B-1", raw, headers)
        assert 400 <= status < 500, (raw, status, body)
        assert named in body["message"], (raw, body)


async def test_link_to_a_leadbot_id_beyond_64_bits_is_404(crm) -> None:
    status, body = await _put(crm, "/api/v1/leads/L-1", '{"name": "x", "leadbot_id": 100000000000000000000000}')
    assert status == 404 and "100000000000000000000000" in body["message"]


async def test_a_nul_in_a_path_id_is_400(crm) -> None:
    resp = await crm.get("/api/v1/leads/external/a%00b", headers=CRM_AUTH)
    assert resp.status == 400 and "NUL" in (await resp.json())["message"]
    resp = await crm.get("/api/v1/customers/a%00b", headers=CRM_AUTH)
    assert resp.status == 400
