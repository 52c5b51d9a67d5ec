"""Async DingTalk API client (aiohttp). dingtalk-sdk's client is synchronous (requests) and only
knows the old APIs through the TOP gateway; this one speaks both hosts itself, on the event loop:

- ``api_base`` (api.dingtalk.com, v1.0): token in the ``x-acs-dingtalk-access-token`` header;
  errors as HTTP 4xx/5xx with ``{code, message}``;
- ``oapi_base`` (oapi.dingtalk.com): token in ``?access_token=``; errors as ``{errcode, errmsg}``.

Tokens (v1.0 ``accessToken`` and old ``gettoken``) are cached until shortly before expiry, fetched
by one coroutine at a time and, through a ``TokenStore`` (store.kv), by one process at a
time; a token DingTalk refuses is dropped and fetched again once. Throttle answers are retried
with backoff (``sleep`` is injectable); everything else raises a classified ``DingTalkError``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import urllib.parse
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence

import aiohttp

from bot.platforms.http_session import OwnedSession
from bot.platforms.token_store import TokenStore, shared_token
from bot.platforms.dingtalk import crm
from bot.platforms.dingtalk import messages as m
from bot.platforms.dingtalk.crypto import custom_robot_sign
from bot.platforms.dingtalk.errors import (DingTalkError, PermanentError, ThrottleError, TokenError,
                                           TransientError, classify_oapi, classify_punish, classify_text,
                                           classify_v1)
from bot.platforms.json_body import json_bytes
from leadbot.clock import Clock, SystemClock
from leadbot.settings import DingTalkSettings

Sleep = Callable[[float], Awaitable[Any]]

CUSTOM_ROBOT_PER_MINUTE = 20
CARD_ALREADY_EXISTS = "param.cardAlreadyExist"
SESSION_WEBHOOK_MARGIN = timedelta(seconds=10)
# A reply through a sessionWebhook runs on the inbox processor: a slow or dead webhook must not
# hold it (10 s per try, retried by the inbox, stalled every other event behind it). A reply that
# does not get through in this time goes by the robot API instead.
SESSION_WEBHOOK_TIMEOUT = aiohttp.ClientTimeout(total=3.0)


@dataclass(frozen=True, slots=True)
class WorkNoticeResult:
    task_id: str
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class BatchSendResult:
    process_query_keys: tuple[str, ...] = ()
    invalid_staff_ids: tuple[str, ...] = ()
    flow_controlled_staff_ids: tuple[str, ...] = ()
    filtered_staff_ids: tuple[str, ...] = ()

    @property
    def process_query_key(self) -> str:
        return self.process_query_keys[0] if self.process_query_keys else ""


@dataclass(frozen=True, slots=True)
class DeliverResult:
    space_type: str
    space_id: str
    success: bool
    error: str = ""


@dataclass(frozen=True, slots=True)
class CardDelivery:
    out_track_id: str
    results: tuple[DeliverResult, ...] = ()

    @property
    def failed(self) -> tuple[DeliverResult, ...]:
        return tuple(r for r in self.results if not r.success)

    @property
    def ok(self) -> bool:
        return bool(self.results) and not self.failed


@dataclass
class _Token:
    value: str = ""
    usable_until: datetime | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _ids(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _param_map(values: Mapping[str, Any]) -> dict[str, str]:
    """A cardParamMap (string -> string; lists and objects as JSON text). Accepts the flat map
    or the wrapped ``{"cardParamMap": {…}}`` that bot.cards.render_dingtalk_card produces."""
    inner = values.get("cardParamMap") if len(values) == 1 else None
    if isinstance(inner, Mapping):
        values = inner
    return {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
            for k, v in values.items()}


class DingTalkClient(OwnedSession):
    TOKEN_MARGIN_SECONDS = 300.0

    def __init__(self, settings: DingTalkSettings, *, clock: Clock | None = None,
                 token_store: TokenStore | None = None, session: aiohttp.ClientSession | None = None,
                 sleep: Sleep = asyncio.sleep, log: Any = None, throttle_retries: int = 3,
                 backoff_base: float = 0.5, backoff_cap: float = 8.0, timeout: float = 10.0) -> None:
        self.settings = settings
        self.api_base = settings.api_base.rstrip("/")
        self.oapi_base = settings.oapi_base.rstrip("/")
        self.robot_code = settings.robot_code or settings.app_key
        self.clock = clock or SystemClock()
        self.token_store = token_store
        self.sleep = sleep
        self.log = log
        self.throttle_retries = throttle_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session_webhook_timeout = SESSION_WEBHOOK_TIMEOUT
        self._session = session
        self._own_session = session is None
        self._tokens = {"v1": _Token(), "oapi": _Token()}
        digest = hashlib.sha256(settings.app_secret.encode()).hexdigest()[:12]
        self._key_suffix = f"{settings.app_key}:{digest}"
        self._owner = uuid.uuid4().hex
        self._robot_sends: dict[str, deque[datetime]] = {}
        self._robot_blocked_until: dict[str, datetime] = {}
        self.token_fetches = {"v1": 0, "oapi": 0}

    # ------------------------------------------------------------------------ plumbing

    def _note(self, event: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.info(event, **fields)

    def _warn(self, event: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.warning(event, **fields)

    def _backoff(self, attempt: int, hint: float | None = None) -> float:
        if hint is not None and hint > 0:
            return min(hint, self.backoff_cap)
        delay = min(self.backoff_cap, self.backoff_base * (2 ** attempt))
        return delay * random.uniform(0.8, 1.2)

    async def _request(self, method: str, url: str, *, params: Mapping[str, Any] | None,
                       body: Any, headers: Mapping[str, str] | None,
                       timeout: aiohttp.ClientTimeout | None = None) -> tuple[int, Any, str]:
        try:
            data_bytes, extra = json_bytes(body)
            async with self._http().request(method, url, params=dict(params or {}), data=data_bytes,
                                            headers={**extra, **dict(headers or {})},
                                            **({"timeout": timeout} if timeout is not None else {})) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise TransientError(f"{type(e).__name__}: {e}"[:200], code="network") from None
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            data = None
        return status, data, text

    def _error(self, host: str, status: int, data: Any, text: str) -> DingTalkError | None:
        if isinstance(data, dict):
            punished = classify_punish(data, status)
            if punished is not None:
                return punished
        if not isinstance(data, dict):
            return classify_text(status, text) if not (200 <= status < 300 and not text.strip()) else None
        if host == "api":
            return classify_v1(status, data)
        if status != 200:
            return classify_oapi(data, status) or classify_text(status, text)
        return classify_oapi(data, status)

    async def _call(self, method: str, host: str, path: str, *, params: Mapping[str, Any] | None = None,
                    body: Any = None, auth: bool = True, retry_throttle: bool = True,
                    url: str | None = None, timeout: aiohttp.ClientTimeout | None = None) -> dict[str, Any]:
        """One API call with token refresh (once) and throttle backoff. ``host`` is "api" or
        "oapi"; ``url`` overrides the address (webhooks)."""
        token_retried = False
        throttled = 0
        transport_failures = 0
        kind = "v1" if host == "api" else "oapi"
        while True:
            query = dict(params or {})
            headers: dict[str, str] = {}
            token = ""
            if auth:
                token = await self._token(kind)
                if host == "api":
                    headers["x-acs-dingtalk-access-token"] = token
                else:
                    query["access_token"] = token
            target = url or (self.api_base if host == "api" else self.oapi_base) + path
            try:
                status, data, text = await self._request(method, target, params=query, body=body, headers=headers,
                                                         timeout=timeout)
            except TransientError:
                # Only reads are repeated here: a POST may have been carried out already.
                if method == "GET" and transport_failures < self.throttle_retries:
                    await self.sleep(self._backoff(transport_failures))
                    transport_failures += 1
                    continue
                raise
            error = self._error(host, status, data, text)
            if error is None:
                return data if isinstance(data, dict) else {}
            if isinstance(error, TokenError) and auth and not token_retried:
                token_retried = True
                self._note("dingtalk.token_rejected", path=path, code=error.code)
                await self.invalidate_token(kind, token)
                continue
            if isinstance(error, ThrottleError) and retry_throttle and throttled < self.throttle_retries:
                delay = self._backoff(throttled, error.retry_after)
                self._note("dingtalk.throttled", path=path, code=error.code, retry_in=round(delay, 3))
                await self.sleep(delay)
                throttled += 1
                continue
            self._note("dingtalk.api_error", path=path, kind=error.kind, code=error.code)
            raise error

    # -------------------------------------------------------------------------- tokens

    async def access_token(self, *, force: bool = False) -> str:
        """The v1.0 token (api.dingtalk.com)."""
        return await self._token("v1", force=force)

    async def oapi_token(self, *, force: bool = False) -> str:
        """The old gettoken token (oapi.dingtalk.com)."""
        return await self._token("oapi", force=force)

    def _fresh(self, t: _Token, now: datetime) -> bool:
        return bool(t.value) and (t.usable_until is None or now < t.usable_until)

    async def _token(self, kind: str, *, force: bool = False) -> str:
        t = self._tokens[kind]
        if not force and self._fresh(t, self.clock.now()):
            return t.value
        async with t.lock:
            if not force and self._fresh(t, self.clock.now()):
                return t.value  # fetched by another coroutine while this one waited
            t.value, t.usable_until = await self._shared_token(kind, force)
            return t.value

    async def _shared_token(self, kind: str, force: bool) -> tuple[str, datetime]:
        if self.token_store is None:
            return await self._fetch_token(kind)
        return await shared_token(self.token_store, f"dingtalk:{kind}_token:{self._key_suffix}",
                                  f"dingtalk:{kind}_token_lease:{self._key_suffix}", self._owner,
                                  lambda: self._fetch_token(kind), force=force, now=self.clock.now, sleep=self.sleep)

    async def _fetch_token(self, kind: str) -> tuple[str, datetime]:
        self.token_fetches[kind] += 1
        s = self.settings
        if kind == "v1":
            data = await self._call("POST", "api", "/v1.0/oauth2/accessToken", auth=False,
                                    body={"appKey": s.app_key, "appSecret": s.app_secret})
            token, expires_in = data.get("accessToken"), data.get("expireIn", 7200)
        else:
            data = await self._call("GET", "oapi", "/gettoken", auth=False,
                                    params={"appkey": s.app_key, "appsecret": s.app_secret})
            token, expires_in = data.get("access_token"), data.get("expires_in", 7200)
        if not isinstance(token, str) or not token:
            raise TransientError("token answer without a token", code="no_token")
        try:
            seconds = float(expires_in)
        except (TypeError, ValueError):
            seconds = 7200.0
        margin = min(self.TOKEN_MARGIN_SECONDS, seconds / 10)
        self._note("dingtalk.token_fetched", kind=kind, expires_in=seconds)
        return token, self.clock.now() + timedelta(seconds=seconds - margin)

    async def invalidate_token(self, kind: str, token: str) -> None:
        """Forgets ``token`` (DingTalk refused it); a token already replaced by another
        coroutine or process stays."""
        t = self._tokens[kind]
        if t.value == token:
            t.value, t.usable_until = "", None
        if self.token_store is not None and token:
            await self.token_store.delete(f"dingtalk:{kind}_token:{self._key_suffix}", only_if_value=token)

    # -------------------------------------------------------------------- work notices

    async def send_work_notice(self, user_ids: Sequence[str] | str, msg: Mapping[str, Any]) -> WorkNoticeResult:
        """asyncsend_v2 to at most 100 users. DingTalk drops the same content to the same user
        after the first time in a day and caps 500 per user per day: build ``msg`` with a
        ``ref`` (messages.short_ref of the outbox key) so distinct messages never read the same."""
        users = [user_ids] if isinstance(user_ids, str) else list(user_ids)
        if not users or len(users) > m.WORK_NOTICE_MAX_USERS:
            raise ValueError("a work notice goes to 1 to 100 users")
        body = {"agent_id": self.settings.agent_id, "userid_list": ",".join(users),
                "msg": m.fit_work_notice(dict(msg))}
        data = await self._call("POST", "oapi", "/topapi/message/corpconversation/asyncsend_v2", body=body)
        return WorkNoticeResult(task_id=str(data.get("task_id", "")), request_id=str(data.get("request_id", "")))

    async def send_work_text(self, user_ids: Sequence[str] | str, content: str, *, ref: str = "") -> WorkNoticeResult:
        return await self.send_work_notice(user_ids, m.work_text(content, ref))

    async def send_work_markdown(self, user_ids: Sequence[str] | str, title: str, text: str, *,
                                 ref: str = "") -> WorkNoticeResult:
        return await self.send_work_notice(user_ids, m.work_markdown(title, text, ref))

    async def send_work_action_card(self, user_ids: Sequence[str] | str, title: str, markdown: str, *,
                                    buttons: Sequence[m.Button] = (), single: m.Button | None = None,
                                    vertical: bool = True, ref: str = "") -> WorkNoticeResult:
        msg = m.work_action_card(title, markdown, buttons=buttons, single=single, vertical=vertical, ref=ref)
        return await self.send_work_notice(user_ids, msg)

    async def get_work_notice_result(self, task_id: str) -> dict[str, Any]:
        """send_result: invalid/forbidden/failed/read/unread user lists and forbidden_list[{code,…}]
        (143105: 500 a day reached, 143106: same content already sent today)."""
        data = await self._call("POST", "oapi", "/topapi/message/corpconversation/getsendresult",
                                body={"agent_id": self.settings.agent_id, "task_id": int(task_id)
                                      if str(task_id).isdigit() else task_id})
        result = data.get("send_result")
        return result if isinstance(result, dict) else {}

    # ------------------------------------------------------------------------- CRM

    async def get_crm_records(self, object_type: str, data_ids: Sequence[str], *,
                              operator_userid: str = "") -> list[crm.CrmRecord]:
        """The CRM records behind a ding_paas_object_data_* event (which carries ids only).
        Customers through v1.0 personalCustomers/batchQuery, contacts through the old
        objectdata/contact/list; ids DingTalk does not return (deleted, no access) are absent."""
        if object_type not in crm.READABLE_TYPES:
            raise ValueError(f"no read API for CRM object type {object_type!r}")
        ids = list(dict.fromkeys(str(i) for i in data_ids if i))
        out: list[crm.CrmRecord] = []
        for i in range(0, len(ids), crm.BATCH_MAX):
            chunk = ids[i:i + crm.BATCH_MAX]
            if object_type in crm.CUSTOMER_TYPES:
                params = {"relationType": object_type}
                if operator_userid:
                    params["currentOperatorUserId"] = operator_userid
                data = await self._call("POST", "api", "/v1.0/crm/personalCustomers/batchQuery",
                                        params=params, body=chunk)
                out += [crm.record_from_v1(r) for r in data.get("result") or [] if isinstance(r, dict)]
            else:
                body = {"data_id_list": ",".join(chunk)}
                if operator_userid:
                    body["current_operator_userid"] = operator_userid
                data = await self._call("POST", "oapi", "/topapi/crm/objectdata/contact/list", body=body)
                out += [crm.record_from_oapi(r) for r in data.get("result_list") or [] if isinstance(r, dict)]
        return out

    # --------------------------------------------------------------------- robot OpenAPI

    async def robot_batch_send(self, user_ids: Sequence[str], msg_key: str,
                               msg_param: Mapping[str, Any]) -> BatchSendResult:
        """One-to-one robot messages, 20 users per call (split here)."""
        users = list(dict.fromkeys(user_ids))
        if not users:
            raise ValueError("robot_batch_send needs at least one user")
        keys: list[str] = []
        invalid: list[str] = []
        flow: list[str] = []
        filtered: list[str] = []
        param = json.dumps(dict(msg_param), ensure_ascii=False)
        for i in range(0, len(users), m.ROBOT_BATCH_MAX):
            chunk = users[i:i + m.ROBOT_BATCH_MAX]
            data = await self._call("POST", "api", "/v1.0/robot/oToMessages/batchSend",
                                    body={"robotCode": self.robot_code, "userIds": chunk,
                                          "msgKey": msg_key, "msgParam": param})
            if data.get("processQueryKey"):
                keys.append(str(data["processQueryKey"]))
            invalid += _ids(data.get("invalidStaffIdList"))
            flow += _ids(data.get("flowControlledStaffIdList"))
            filtered += _ids(data.get("filteredStaffIdList"))
        return BatchSendResult(tuple(keys), tuple(invalid), tuple(flow), tuple(filtered))

    async def robot_group_send(self, open_conversation_id: str, msg_key: str, msg_param: Mapping[str, Any]) -> str:
        """A robot message into a group the robot is in; returns processQueryKey."""
        data = await self._call("POST", "api", "/v1.0/robot/groupMessages/send",
                                body={"robotCode": self.robot_code, "openConversationId": open_conversation_id,
                                      "msgKey": msg_key, "msgParam": json.dumps(dict(msg_param), ensure_ascii=False)})
        return str(data.get("processQueryKey", ""))

    def is_own_webhook(self, webhook: str) -> bool:
        """True when the URL is on DingTalk's own hosts (the configured oapi/api bases). The
        sessionWebhook comes in the message body: posting a rep's search results to whatever
        URL a body names would hand them to whoever forged or replayed it."""
        try:
            target = urllib.parse.urlsplit(webhook)
        except ValueError:
            return False
        for base in (self.oapi_base, self.api_base):
            own = urllib.parse.urlsplit(base)
            if (target.scheme, target.netloc.lower()) == (own.scheme, own.netloc.lower()) and not target.username:
                return True
        return False

    async def send_session_webhook(self, webhook: str, payload: Mapping[str, Any]) -> None:
        """Replies through a robot message's sessionWebhook (no token; valid ~90 minutes)."""
        if not self.is_own_webhook(webhook):
            raise PermanentError("sessionWebhook is not on a DingTalk host", code="foreign_webhook")
        await self._call("POST", "oapi", "", url=webhook, body=dict(payload), auth=False, retry_throttle=False,
                         timeout=self.session_webhook_timeout)

    async def reply(self, command: Any, text: str | None = None, *, markdown: tuple[str, str] | None = None) -> str:
        """Answers a robot TextCommand: through its sessionWebhook while that is valid, else
        through the robot API (group send or one-to-one batchSend). Returns "session" or "api"."""
        if (text is None) == (markdown is None):
            raise ValueError("give text or markdown=(title, text)")
        webhook = getattr(command, "reply_webhook", "")
        expires = getattr(command, "reply_webhook_expires_at", None)
        if webhook and (expires is None or self.clock.now() + SESSION_WEBHOOK_MARGIN < expires):
            payload = m.robot_text(text) if text is not None else m.robot_markdown(*markdown)  # type: ignore[misc]
            try:
                await self.send_session_webhook(webhook, payload)
                return "session"
            except PermanentError as e:
                self._note("dingtalk.session_webhook_refused", code=e.code)
            except TransientError as e:
                # Slow or unreachable: the robot API answers instead of the inbox retrying this
                # event (and everything queued behind it) webhook-timeout after webhook-timeout.
                self._note("dingtalk.session_webhook_failed", code=e.code)
        msg_key, param = m.sample_text(text) if text is not None else m.sample_markdown(*markdown)  # type: ignore[misc]
        if getattr(command, "is_group", False) and getattr(command, "conversation_id", ""):
            await self.robot_group_send(command.conversation_id, msg_key, param)
        else:
            result = await self.robot_batch_send([command.sender_id], msg_key, param)
            # conformance D7 (dt/chatbots-send-one-on-one-chat-messages-in-batches): batchSend
            # answers 200 and lists whom it did not send to. Flow-controlled: not sent, so this
            # raises a throttle and the caller (the inbox) tries again later; invalid: reported.
            if command.sender_id in result.flow_controlled_staff_ids:
                raise ThrottleError("robot reply flow-controlled", retry_after=60.0, code="flowControlled",
                                    scope="recipient")
            if command.sender_id in result.invalid_staff_ids:
                self._warn("dingtalk.reply_user_invalid", code="invalidStaffId")
                raise PermanentError("robot reply: the user is invalid for this robot", code="invalidStaffId")
        return "api"

    # --------------------------------------------------------------- interactive cards

    @property
    def card_route_key(self) -> str:
        return f"leadbot_{self.settings.app_key}"[:64]

    async def register_card_callback(self, callback_url: str, *, route_key: str | None = None,
                                     force: bool = True) -> None:
        """Points HTTP card callbacks with our route key at ``callback_url``, signed with
        card_callback_secret (or the app secret)."""
        s = self.settings
        await self._call("POST", "api", "/v1.0/card/callbacks/register",
                         body={"callbackRouteKey": route_key or self.card_route_key, "callbackUrl": callback_url,
                               "apiSecret": s.card_callback_secret or s.app_secret, "forceUpdate": force})

    async def create_and_deliver_card(self, out_track_id: str, *, card_data: Mapping[str, Any],
                                      user_ids: Sequence[str] = (), open_conversation_id: str = "",
                                      private_data: Mapping[str, Mapping[str, Any]] | None = None,
                                      template_id: str = "", callback_type: str | None = None,
                                      callback_route_key: str | None = None,
                                      at_user_ids: Mapping[str, str] | None = None,
                                      support_forward: bool = False) -> CardDelivery:
        """Creates the card instance ``out_track_id`` (shared ``card_data``, per-user
        ``private_data``) and delivers it to each user's robot chat and/or one group."""
        spaces = [f"IM_ROBOT.{u}" for u in dict.fromkeys(user_ids)]
        if open_conversation_id:
            spaces.append(f"IM_GROUP.{open_conversation_id}")
        if not spaces:
            raise ValueError("a card needs user_ids or open_conversation_id")
        template = template_id or self.settings.card_template_id
        if not template:
            # A configuration gap, reported like a platform refusal so the outbox falls back.
            raise PermanentError("no card template: set [dingtalk] card_template_id", code="no_card_template")
        ctype = callback_type or ("STREAM" if self.settings.stream else "HTTP")
        body: dict[str, Any] = {
            "cardTemplateId": template, "outTrackId": out_track_id,
            "openSpaceId": "dtv1.card//" + ";".join(spaces),
            "cardData": {"cardParamMap": _param_map(card_data)},
            "callbackType": ctype, "userIdType": 1,
        }
        if ctype == "HTTP":
            body["callbackRouteKey"] = callback_route_key or self.card_route_key
        if private_data:
            body["privateData"] = {uid: {"cardParamMap": _param_map(v)} for uid, v in private_data.items()}
        if user_ids:
            body["imRobotOpenSpaceModel"] = {"supportForward": support_forward}
            body["imRobotOpenDeliverModel"] = {"spaceType": "IM_ROBOT", "robotCode": self.robot_code}
        if open_conversation_id:
            body["imGroupOpenSpaceModel"] = {"supportForward": support_forward}
            deliver: dict[str, Any] = {"robotCode": self.robot_code}
            if at_user_ids:
                deliver["atUserIds"] = dict(at_user_ids)
            body["imGroupOpenDeliverModel"] = deliver
        try:
            data = await self._call("POST", "api", "/v1.0/card/instances/createAndDeliver", body=body)
        except PermanentError as e:
            if e.code != CARD_ALREADY_EXISTS:
                raise
            # conformance D9 (dt/create-and-deliver-cards, suspected: the page also says a reused
            # id "does not take effect"). Reading chosen: the card exists (an earlier attempt made
            # it, e.g. before a crash) and may not have reached every space: deliver it there,
            # which does not add a second card where it already is.
            deliver = {k: v for k, v in body.items() if k in ("outTrackId", "openSpaceId", "userIdType",
                                                               "imRobotOpenDeliverModel", "imGroupOpenDeliverModel")}
            data = await self._call("POST", "api", "/v1.0/card/instances/deliver", body=deliver)
        result = data.get("result") if isinstance(data.get("result"), dict) else {}
        if data.get("success") is False:
            raise PermanentError("createAndDeliver answered success=false", code="success_false", body=data)
        results = tuple(DeliverResult(str(r.get("spaceType", "")), str(r.get("spaceId", "")), bool(r.get("success")),
                                      str(r.get("errorMsg") or ""))
                        for r in result.get("deliverResults") or [] if isinstance(r, dict))
        return CardDelivery(str(result.get("outTrackId") or out_track_id), results)

    async def update_card(self, out_track_id: str, *, card_data: Mapping[str, Any] | None = None,
                          private_data: Mapping[str, Mapping[str, Any]] | None = None,
                          by_key: bool = True) -> None:
        """Updates the shared data and/or some users' private data of a delivered card.
        ``by_key``: merge the given keys of the shared data (True) or replace it (False). A
        user's private data always replaces what they had: leadbot sends each user's whole
        overlay, only what differs from the shared data (conformance D11), so a key it leaves
        out must not keep an older private value over the new shared one."""
        body: dict[str, Any] = {"outTrackId": out_track_id, "userIdType": 1,
                                "cardUpdateOptions": {"updateCardDataByKey": by_key,
                                                      "updatePrivateDataByKey": False}}
        if card_data is not None:
            body["cardData"] = {"cardParamMap": _param_map(card_data)}
        if private_data:
            body["privateData"] = {uid: {"cardParamMap": _param_map(v)} for uid, v in private_data.items()}
        data = await self._call("PUT", "api", "/v1.0/card/instances", body=body)
        if data.get("success") is False:
            raise PermanentError("card update answered success=false", code="success_false", body=data)

    # -------------------------------------------------------------- custom group robot

    def signed_webhook(self, webhook: str, secret: str) -> str:
        """The webhook URL with ``timestamp`` and ``sign`` (valid for an hour) appended."""
        if not secret:
            return webhook
        ts = str(int(self.clock.now().timestamp() * 1000))
        sign = urllib.parse.quote_plus(custom_robot_sign(ts, secret))
        return f"{webhook}{'&' if '?' in webhook else '?'}timestamp={ts}&sign={sign}"

    def _robot_slot(self, webhook: str) -> None:
        """At most 20 messages a minute per robot: going over blocks the robot for 10 minutes,
        so the 21st is refused here (ThrottleError with retry_after) instead of being sent.
        This window is this process's only; the outbox keeps the one every process shares
        (notifications.throttle, store.send_blocks)."""
        now = self.clock.now()
        blocked = self._robot_blocked_until.get(webhook)
        if blocked and now < blocked:
            raise ThrottleError("custom robot is throttled", retry_after=(blocked - now).total_seconds(),
                                code="local_penalty", scope="recipient")
        sent = self._robot_sends.setdefault(webhook, deque())
        while sent and (now - sent[0]).total_seconds() >= 60:
            sent.popleft()
        if len(sent) >= CUSTOM_ROBOT_PER_MINUTE:
            wait = 60 - (now - sent[0]).total_seconds()
            raise ThrottleError("custom robot: 20 messages a minute", retry_after=max(wait, 0.001),
                                code="local_rate", scope="recipient")
        sent.append(now)

    async def send_custom_robot(self, payload: Mapping[str, Any], *, webhook: str | None = None,
                                secret: str | None = None, msg_uuid: str = "") -> None:
        """A message to a group through a custom robot (the managers' escalation group).
        ``msg_uuid``: conformance D5 (dt/custom-robots-send-group-messages): DingTalk posts a
        msgUuid once, so a retry after a timeout (one outbox row, one uuid) cannot post twice."""
        hook = webhook if webhook is not None else self.settings.manager_robot_webhook
        sec = secret if secret is not None else self.settings.manager_robot_secret
        if not hook:
            raise ValueError("no custom robot webhook configured")
        self._robot_slot(hook)
        body = dict(payload)
        if msg_uuid:
            body["msgUuid"] = msg_uuid
        try:
            await self._call("POST", "oapi", "", url=self.signed_webhook(hook, sec), body=body,
                             auth=False, retry_throttle=False)
        except ThrottleError as e:
            if e.scope == "recipient" and e.retry_after:
                # conformance D1: 410100 blocks this robot for 10 minutes, whoever sends.
                self._robot_blocked_until[hook] = self.clock.now() + timedelta(seconds=e.retry_after)
            raise

    async def send_custom_robot_text(self, content: str, *, at_user_ids: Iterable[str] = (),
                                     webhook: str | None = None, secret: str | None = None,
                                     msg_uuid: str = "") -> None:
        await self.send_custom_robot(m.robot_text(content, list(at_user_ids)), webhook=webhook, secret=secret,
                                     msg_uuid=msg_uuid)

    async def send_custom_robot_markdown(self, title: str, text: str, *, at_user_ids: Iterable[str] = (),
                                         webhook: str | None = None, secret: str | None = None,
                                         msg_uuid: str = "") -> None:
        await self.send_custom_robot(m.robot_markdown(title, text, list(at_user_ids)), webhook=webhook, secret=secret,
                                     msg_uuid=msg_uuid)

    # -------------------------------------------------------------------------- stream

    async def open_stream_connection(self, subscriptions: Sequence[Mapping[str, str]],
                                     ua: str = "leadbot") -> dict[str, str]:
        """Asks for a Stream endpoint and its single-use ticket (valid 90 s)."""
        s = self.settings
        data = await self._call("POST", "api", "/v1.0/gateway/connections/open", auth=False,
                                body={"clientId": s.app_key, "clientSecret": s.app_secret,
                                      "subscriptions": [dict(x) for x in subscriptions], "ua": ua, "localIp": ""})
        endpoint, ticket = data.get("endpoint"), data.get("ticket")
        if not isinstance(endpoint, str) or not isinstance(ticket, str) or not endpoint or not ticket:
            raise TransientError("connections/open answered without endpoint or ticket", code="no_ticket")
        return {"endpoint": endpoint, "ticket": ticket}

    # ------------------------------------------------------------------------ directory

    async def get_department(self, dept_id: int = 1) -> dict[str, Any]:
        """One department ({dept_id, name, parent_id, ...}); listsub never returns the root's name."""
        data = await self._call("POST", "oapi", "/topapi/v2/department/get", body={"dept_id": int(dept_id)})
        result = data.get("result")
        return result if isinstance(result, dict) else {}

    async def list_sub_departments(self, dept_id: int = 1) -> list[dict[str, Any]]:
        """The direct children of a department: [{dept_id, name, parent_id, ...}] (one level)."""
        data = await self._call("POST", "oapi", "/topapi/v2/department/listsub", body={"dept_id": int(dept_id)})
        return [d for d in data.get("result") or [] if isinstance(d, dict)]

    async def list_department_users(self, dept_id: int, *, page_size: int = 100) -> list[dict[str, Any]]:
        """Every direct member of a department ({userid, name, mobile?, leader, active, dept_id_list}),
        following the cursor 100 at a time (DingTalk's maximum)."""
        users: list[dict[str, Any]] = []
        cursor: Any = 0
        seen: set[Any] = set()
        while True:
            # conformance D10 (dt/queries-the-complete-information-of-a-department-user,
            # suspected): without contain_access_limit, staff whose visibility is restricted may
            # be left out, and directory sync would take them for people who left. Reading
            # chosen: always ask for them (the sandbox leaves them out unless asked).
            data = await self._call("POST", "oapi", "/topapi/v2/user/list",
                                    body={"dept_id": int(dept_id), "cursor": cursor, "size": min(page_size, 100),
                                          "contain_access_limit": True})
            result = data.get("result") if isinstance(data.get("result"), dict) else {}
            users += [u for u in result.get("list") or [] if isinstance(u, dict)]
            cursor = result.get("next_cursor")
            if not result.get("has_more") or cursor is None or cursor in seen:
                return users
            seen.add(cursor)
