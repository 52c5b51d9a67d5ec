"""Lead intake: POST /api/v1/leads and GET /api/v1/leads/{id}.

Web forms, ad platforms and call centres send whatever fields they have, in JSON, form-urlencoded
or multipart. Nothing they send is lost: known fields fill columns, everything else lands in
`extra` verbatim, and a malformed phone or email is stored as given and flagged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from typing import Any

from aiohttp import web
from aiohttp import BodyPartReader, MultipartReader, StreamReader
from aiohttp.http_exceptions import HttpProcessingError

from bot.api.auth import bearer_source
from bot.context import AppContext, ctx_of
from bot.api.errors import json_error
from store.dto import LeadInput
from crm.sql_store import keep_in_extra
from leadbot.settings import DEFAULT_SOURCE

# Canonical lead fields and the spellings sources commonly use for them.
FIELD_ALIASES: dict[str, str] = {
    "name": "name", "contact_name": "name",
    "phone": "phone", "mobile": "phone", "tel": "phone", "telephone": "phone",
    "email": "email", "mail": "email",
    "company": "company", "company_name": "company", "corp_name": "company",
    "title": "title", "job_title": "title", "position": "title",
    "region": "region", "province": "region",
    "city": "city",
    "product_line": "product_line", "product": "product_line",
    "language": "language", "lang": "language",
    "amount": "amount", "budget": "amount",
    "campaign": "campaign", "utm_campaign": "campaign",
    "source_ref": "source_ref",
    "note": "note", "remark": "note", "message": "note", "comment": "note",
}
CHANNEL_KEYS = ("source_channel", "channel", "source", "utm_source")
CHANNEL_LIMIT = 64  # leads.source_channel
INTAKE_KEY_LIMIT = 300  # leads.intake_key
INLINE_FILE_BYTES = 64 * 1024


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def source_of(ctx: AppContext, request: web.Request) -> str | None:
    """The intake source ([intake] sources, api_tokens = "default") the Bearer token names."""
    return bearer_source(request.headers.get("Authorization", ""), ctx.settings.intake.source_tokens)


def authorized(ctx: AppContext, request: web.Request) -> bool:
    return source_of(ctx, request) is not None


def _unauthorized() -> web.Response:
    resp = json_error(401, "unauthorized", "missing or invalid Bearer token")
    resp.headers["WWW-Authenticate"] = 'Bearer realm="leadbot"'
    return resp


async def _read_body(request: web.Request, limit: int) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    ctype = request.content_type
    if ctype == "multipart/form-data":
        return await _read_multipart(request, limit)
    raw = await request.read()
    if len(raw) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(raw))
    if not raw.strip():
        raise BadRequest("empty body: send a JSON object or form fields")
    if ctype == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qsl

        charset = request.charset or "utf-8"
        try:
            # Percent-escapes decode strictly in the declared charset (UTF-8 unless the Content-Type
            # says charset=gbk): a GBK form read as UTF-8 would store "����", a lead acknowledged
            # and its text lost.
            pairs = parse_qsl(raw.decode(charset), keep_blank_values=True, strict_parsing=False,
                              encoding=charset, errors="strict")
        except (UnicodeDecodeError, LookupError):
            raise BadRequest(f"form fields are not valid {charset}; declare the charset in the Content-Type "
                             f"(e.g. application/x-www-form-urlencoded; charset=gbk)") from None
        return _storable_body(_collapse(pairs))
    # JSON is the default: many sources omit or mislabel the content type.
    charset = request.charset or "utf-8"
    try:
        text = raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        raise BadRequest(f"body is not valid {charset} text") from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except _NotJson as e:
        raise BadRequest(str(e)) from None
    except RecursionError:
        raise BadRequest("JSON nests too deeply") from None
    except ValueError as e:
        hint = "" if ctype == "application/json" else f" (content type was {ctype or 'missing'})"
        raise BadRequest(f"body is not valid JSON: {e}{hint}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"expected a JSON object with the lead's fields, got {type(data).__name__}")
    return _storable_body(data)


class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; they are not JSON, and stored they would be served
    # back as invalid JSON.
    raise _NotJson(f"body is not valid JSON: {name} is not a JSON number")


def _storable_body(data: dict[str, Any]) -> dict[str, Any]:
    """Refuses what could be acknowledged but not stored or served back whole."""
    try:
        json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        # "\ud800" alone is valid JSON but not Unicode: nothing downstream could store or echo it.
        raise BadRequest("body contains a lone surrogate escape (invalid Unicode)") from None
    except ValueError:
        raise BadRequest("body contains NaN or Infinity, which are not JSON numbers") from None
    if not any(_has_value(v) for v in data.values()):
        raise BadRequest("the lead has no fields: send at least one non-empty field (name, phone, ...)")
    return data


def _has_value(value: Any) -> bool:
    return value not in (None, "", [], {})


def _collapse(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Form fields: a key sent once is a value, a key sent several times keeps every value."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            prev = out[key]
            out[key] = (prev if isinstance(prev, list) else [prev]) + [value]
        else:
            out[key] = value
    return out


async def _read_multipart(request: web.Request, limit: int) -> dict[str, Any]:
    try:
        # The body was read already (bot.app.read_deadline): parse the bytes, not the stream.
        raw = await request.read()
        stream = StreamReader(_Unpaused(), len(raw) + 1, loop=asyncio.get_running_loop())
        stream.feed_data(raw)
        stream.feed_eof()
        reader = MultipartReader(request.headers, stream)
    except (ValueError, AssertionError, HttpProcessingError) as e:
        raise BadRequest(f"malformed multipart body: {e}") from None
    pairs: list[tuple[str, Any]] = []
    total = 0
    try:
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue  # nested multiparts and nameless parts carry no lead field
            data = await part.read(decode=True)
            total += len(data)
            if total > limit:
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=total)
            if part.filename:
                entry: dict[str, Any] = {"filename": part.filename,
                                         "content_type": part.headers.get("Content-Type", ""),
                                         "size": len(data)}
                if len(data) <= INLINE_FILE_BYTES:
                    entry["content_base64"] = base64.b64encode(data).decode()
                pairs.append((part.name, entry))
            else:
                charset = part.get_charset(default="utf-8")
                try:
                    pairs.append((part.name, data.decode(charset)))
                except (UnicodeDecodeError, LookupError):
                    raise BadRequest(f"field {part.name!r} is not valid {charset}") from None
    except web.HTTPException:
        raise
    except (ValueError, AssertionError, HttpProcessingError) as e:
        raise BadRequest(f"malformed multipart body: {e}") from None
    return _storable_body(_collapse(pairs))


class _Unpaused:
    """The protocol a StreamReader over bytes already in memory asks to pause: nothing to pause."""

    def pause_reading(self, *_: Any, **__: Any) -> None:
        return None

    def resume_reading(self, *_: Any, **__: Any) -> None:
        return None


def storable(text: str) -> str:
    """Text every database column accepts: lone surrogates (from JSON escapes, or invalid UTF-8 in a
    header) become visible escapes, NUL (refused by PostgreSQL text) is dropped."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace").replace("\x00", "")


def split_fields(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Known fields (by alias) and extras; the channel the lead came from."""
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    channel = "api"
    channel_taken = False
    for key, value in data.items():
        norm = key.strip().lower() if isinstance(key, str) else key
        if norm in CHANNEL_KEYS and isinstance(value, str) and value.strip() and not channel_taken:
            channel_taken = True
            channel = storable(value).strip()
            if len(channel) > CHANNEL_LIMIT or storable(value) != value:
                # The column takes a prefix; the whole value stays in extra under its own key.
                extra[key] = value
                channel = channel[:CHANNEL_LIMIT]
            continue
        canonical = FIELD_ALIASES.get(norm)
        if canonical and canonical not in fields and isinstance(value, (str, int, float)) \
                and not isinstance(value, bool):
            fields[canonical] = value if canonical == "amount" else storable(str(value))
            if canonical != "amount" and fields[canonical] != str(value):
                # A NUL (refused by PostgreSQL text) or a lone surrogate: the column gets the
                # storable text, extra the value exactly as sent.
                keep_in_extra(extra, key, value)
        else:
            extra[key] = value
    return fields, extra, channel


def intake_key(source: str, kind: str, value: str) -> str:
    """The lead's idempotency key, per source: source B cannot claim (or answer for) source A's
    keys. A key too long for the column is hashed whole, never cut (two keys that share their
    first 300 characters are two leads)."""
    key = f"{kind}:{value}" if source == DEFAULT_SOURCE else f"src:{source}:{kind}:{value}"
    if len(key) > INTAKE_KEY_LIMIT:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        key = f"sha256:{source}:{kind}:{digest}"
    return key


_LEAD_ID = re.compile(r"[0-9]{1,18}")


def readable_by(lead_source: str, source: str) -> bool:
    """A source reads only the leads it sent, the default source (api_tokens) included (issue 18
    #2: ids are sequential and a lead holds a full phone). Leads no intake source sent (the CRM
    bridge's, a WeCom friend's) are read by nobody here: the CRM reads its own through
    GET /api/v1/leads/external/{id} with its own token."""
    return lead_source == source


async def lead_json(ctx: AppContext, lead: Any) -> dict[str, Any]:
    """The lead as the intake API shows it: its owner named by the ids people outside know."""
    body = lead.to_json()
    owner = await ctx.store.get_rep(lead.owner_id) if lead.owner_id is not None else None
    body["owner"] = ({"id": owner.id, "external_id": owner.external_id, "name": owner.name}
                     if owner is not None else None)
    return body


def _json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def post_lead(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    source = source_of(ctx, request)
    if source is None:
        ctx.metrics.leads.labels("unauthorized", "").inc()
        return _unauthorized()
    try:
        data = await _read_body(request, ctx.settings.intake.max_body_bytes)
    except BadRequest as e:
        ctx.metrics.leads.labels("rejected", "").inc()
        ctx.log.info("intake.rejected", reason=e.message, source=source)
        return json_error(400, "bad_request", e.message)
    fields, extra, channel = split_fields(data)
    idem = storable(request.headers.get("Idempotency-Key", "")).strip()
    if idem:
        key: str | None = intake_key(source, "idem", idem)
    elif fields.get("source_ref"):
        key = intake_key(source, "ref", f"{channel}:{fields['source_ref']}")
    else:
        key = None
    lead, created = await ctx.store.create_lead(
        LeadInput(fields=fields, extra=extra, intake_key=key, source_channel=channel, source=source))
    ctx.metrics.leads.labels("created" if created else "replayed", ctx.metrics.channel_label(lead.source_channel)).inc()
    ctx.log.info("intake.lead", lead_id=lead.id, created=created, channel=lead.source_channel,
                 source=source, flags=list(lead.flags))
    if created:
        on_new = ctx.services.on_new_lead
        if on_new is not None:
            await on_new(lead)
    body = await lead_json(ctx, lead)
    body["created"] = created
    return _json_response(body, status=201 if created else 200)


async def get_lead(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    source = source_of(ctx, request)
    if source is None:
        return _unauthorized()
    raw_id = request.match_info["lead_id"]
    # ASCII digits only ("²".isdigit() is True), and within a 64-bit id.
    lead = await ctx.store.get_lead(int(raw_id)) if _LEAD_ID.fullmatch(raw_id) else None
    # Another source's lead is answered as missing: ids are sequential, and a lead holds a phone.
    if lead is None or not readable_by(lead.source, source):
        return json_error(404, "not_found", f"no lead with id {raw_id!r} from this source")
    return _json_response(await lead_json(ctx, lead))


def setup_intake(app: web.Application) -> None:
    app.router.add_post("/api/v1/leads", post_lead, name="leads")
    app.router.add_get("/api/v1/leads/{lead_id}", get_lead, name="lead")

