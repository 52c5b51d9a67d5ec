"""Lead intake through the HTTP edge, as a web form, an ad platform or a call centre sends."""

from __future__ import annotations

import json

from tests.conftest import AUTH


async def test_json_lead_with_unknown_fields_comes_back_whole(client) -> None:
    lead = {"name": "王小明", "phone": "138-0013-8000", "company": "H&M (上海) 贸易有限公司",
            "医院等级": "三级甲等", "query": "a=1&b=2?c", "nested": {"科室": ["心内科", "儿科"]}, "amount": "1.2万"}
    resp = await client.post("/api/v1/leads", data=json.dumps(lead, ensure_ascii=False).encode(),
                             headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 201
    body = await resp.json()
    assert body["created"] is True
    got = await (await client.get(f"/api/v1/leads/{body['id']}", headers=AUTH)).json()
    assert got["company"] == "H&M (上海) 贸易有限公司"
    assert got["name"] == "王小明" and got["phone"] == "138-0013-8000"
    assert got["extra"]["医院等级"] == "三级甲等"
    assert got["extra"]["query"] == "a=1&b=2?c"
    assert got["extra"]["nested"] == {"科室": ["心内科", "儿科"]}
    assert got["amount"] == 12000.0
    assert got["flags"] == []
    assert got["customer_id"]


async def test_form_urlencoded_keeps_special_characters(client) -> None:
    resp = await client.post("/api/v1/leads", data={"name": "李雷", "company": "H&M (上海)", "来源页": "/a?x=1&y=2",
                                                    "channel": "baidu"}, headers=AUTH)
    assert resp.status == 201
    got = await (await client.get(f"/api/v1/leads/{(await resp.json())['id']}", headers=AUTH)).json()
    assert got["company"] == "H&M (上海)"
    assert got["extra"]["来源页"] == "/a?x=1&y=2"
    assert got["source_channel"] == "baidu"


def _browser_multipart(fields: list[tuple[str, bytes, str | None, str | None]]) -> tuple[bytes, str]:
    """Builds the body a browser sends: raw UTF-8 field names, as forms in Chinese pages do."""
    boundary = "----leadbotTestBoundary7MA4YWxkTrZu0gW"
    out = b""
    for name, value, filename, ctype in fields:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


async def test_multipart_with_a_file(client) -> None:
    body, ctype = _browser_multipart([("name", "韩梅梅".encode(), None, None),
                                      ("备注", "需要报价 & 演示".encode(), None, None),
                                      ("card", b"\x89PNG fake", "名片.png", "image/png")])
    resp = await client.post("/api/v1/leads", data=body, headers={**AUTH, "Content-Type": ctype})
    assert resp.status == 201
    got = await (await client.get(f"/api/v1/leads/{(await resp.json())['id']}", headers=AUTH)).json()
    assert got["name"] == "韩梅梅"
    assert got["extra"]["备注"] == "需要报价 & 演示"
    assert got["extra"]["card"]["filename"] == "名片.png"
    assert got["extra"]["card"]["size"] == 9


async def test_broken_multipart_is_a_400(client) -> None:
    resp = await client.post("/api/v1/leads", data=b"--x\r\ngarbage",
                             headers={**AUTH, "Content-Type": "multipart/form-data; boundary=x"})
    assert resp.status == 400


async def test_malformed_phone_and_email_are_stored_and_flagged(client) -> None:
    resp = await client.post("/api/v1/leads", json={"name": "x", "phone": "call me", "email": "not-an-email",
                                                    "amount": "lots"}, headers=AUTH)
    assert resp.status == 201
    body = await resp.json()
    assert body["phone"] == "call me" and body["email"] == "not-an-email"
    assert set(body["flags"]) == {"phone_invalid", "email_invalid", "amount_invalid"}
    assert body["extra"]["amount"] == "lots"


async def test_idempotency_key_and_source_ref_return_the_same_lead(client) -> None:
    h = {**AUTH, "Idempotency-Key": "form-42"}
    first = await (await client.post("/api/v1/leads", json={"name": "a"}, headers=h)).json()
    again = await client.post("/api/v1/leads", json={"name": "a"}, headers=h)
    assert again.status == 200
    assert (await again.json())["id"] == first["id"]
    one = await (await client.post("/api/v1/leads", json={"name": "b", "source_ref": "ad-7"}, headers=AUTH)).json()
    two = await (await client.post("/api/v1/leads", json={"name": "b", "source_ref": "ad-7"}, headers=AUTH)).json()
    assert one["id"] == two["id"]


async def test_same_phone_links_the_same_customer(client) -> None:
    a = await (await client.post("/api/v1/leads", json={"name": "王小明", "phone": "13800138000"}, headers=AUTH)).json()
    b = await (await client.post("/api/v1/leads", json={"name": "Wang", "phone": "+86 138 0013 8000"}, headers=AUTH)).json()
    assert a["customer_id"] == b["customer_id"]


async def test_refusals_are_clear(client) -> None:
    assert (await client.post("/api/v1/leads", json={"name": "x"})).status == 401
    bad = await client.post("/api/v1/leads", json={"name": "x"}, headers={"Authorization": "Bearer wrong"})
    assert bad.status == 401
    broken = await client.post("/api/v1/leads", data=b"{", headers={**AUTH, "Content-Type": "application/json"})
    assert broken.status == 400
    assert "JSON" in (await broken.json())["message"]
    arr = await client.post("/api/v1/leads", data=b"[1]", headers={**AUTH, "Content-Type": "application/json"})
    assert arr.status == 400
    bad_utf8 = await client.post("/api/v1/leads", data=b'{"name": "\xff"}',
                                 headers={**AUTH, "Content-Type": "application/json"})
    assert bad_utf8.status == 400
    deep = ("[" * 100000 + "]" * 100000).encode()
    assert (await client.post("/api/v1/leads", data=deep, headers={**AUTH, "Content-Type": "application/json"})).status == 400
    big = await client.post("/api/v1/leads", data=b"x" * (1024 * 1024 + 10), headers={**AUTH, "Content-Type": "application/json"})
    assert big.status == 413
    assert (await client.get("/api/v1/leads/999999", headers=AUTH)).status == 404
    assert (await client.get("/api/v1/leads/abc", headers=AUTH)).status == 404
    assert (await client.get("/api/v1/leads/1")).status == 401


async def test_long_values_are_kept_whole(client) -> None:
    long_company = "很长的公司名" * 100
    body = await (await client.post("/api/v1/leads", json={"company": long_company}, headers=AUTH)).json()
    assert body["extra"]["company"] == long_company
    assert "company_truncated" in body["flags"]


async def test_health_ready_and_metrics(client) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"
    await client.post("/api/v1/leads", json={"name": "m"}, headers=AUTH)
    text = await (await client.get("/metrics")).text()
    assert 'leadbot_intake_leads_total{channel="api",outcome="created"} 1.0' in text
    assert "leadbot_http_request_seconds_bucket" in text
    assert "route=\"/api/v1/leads\"" in text, text
