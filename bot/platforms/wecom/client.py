"""Async WeCom API client (aiohttp). wechatpy's client is synchronous (requests) and would block
the event loop, so leadbot speaks the HTTP API itself.

Token: fetched from gettoken, cached until shortly before expiry, shared by every coroutine of
the process (one fetch at a time) and, through a `TokenStore` (the kv table), by every process.
Errors: token errors refresh and retry once; throttle errors back off and retry; anything else
raises WeComError with WeCom's errcode and errmsg (errors.py classifies them).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Iterable, Mapping

import aiohttp

from bot.platforms.http_session import OwnedSession
from bot.platforms.json_body import json_bytes
from bot.platforms.token_store import TokenStore, shared_token
from bot.platforms.wecom.errors import (ErrorKind, WeComError, WeComTransportError, classify)
from leadbot.clock import Clock, SystemClock

Sleep = Callable[[float], Awaitable[Any]]

TASK_ID_RE = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")
# aiohttp errors may quote the URL; its query carries the token, the secret or the robot key.
_SECRET_QUERY_RE = re.compile(r"(access_token|corpsecret|key)=[^&\s'\"]+")
CALLBACK_CARD_TYPES = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})


@dataclass(frozen=True, slots=True)
class SendResult:
    msgid: str
    response_code: str = ""
    invalid_users: tuple[str, ...] = ()
    invalid_parties: tuple[str, ...] = ()
    invalid_tags: tuple[str, ...] = ()
    unlicensed_users: tuple[str, ...] = ()


def _split(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return tuple(v for v in str(value).split("|") if v)


def _join(ids: str | Iterable[str]) -> str:
    return ids if isinstance(ids, str) else "|".join(ids)


class WeComClient(OwnedSession):
    TOKEN_MARGIN_SECONDS = 300.0

    def __init__(self, *, corp_id: str, secret: str, agent_id: int, api_base: str = "https://qyapi.weixin.qq.com",
                 clock: Clock | None = None, token_store: TokenStore | None = None,
                 session: aiohttp.ClientSession | None = None, sleep: Sleep = asyncio.sleep,
                 log: Any = None, throttle_retries: int = 3, backoff_base: float = 0.5,
                 backoff_cap: float = 8.0, timeout: float = 10.0, robot_key: str = "") -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = int(agent_id)
        self.api_base = api_base.rstrip("/")
        self.clock = clock or SystemClock()
        self.token_store = token_store
        self.sleep = sleep
        self.log = log
        self.throttle_retries = throttle_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.robot_key = robot_key
        self._session = session
        self._own_session = session is None
        self._token: str = ""
        self._token_expires: datetime | None = None
        self._lock = asyncio.Lock()
        digest = hashlib.sha256(secret.encode()).hexdigest()[:12]
        self._token_key = f"wecom:access_token:{corp_id}:{self.agent_id}:{digest}"
        self._lease_key = f"wecom:access_token_lease:{corp_id}:{self.agent_id}:{digest}"
        self._owner = uuid.uuid4().hex
        self.token_fetches = 0  # how many gettoken calls this client made (metrics, tests)

    # ---------------------------------------------------------------- plumbing

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_cap, self.backoff_base * (2 ** attempt))
        return delay * random.uniform(0.8, 1.2)

    async def _request(self, method: str, api: str, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        url = f"{self.api_base}/cgi-bin/{api}"
        try:
            data, headers = json_bytes(body)  # conformance W8: UTF-8, not \u escapes
            async with self._http().request(method, url, params=dict(params), data=data, headers=headers) as resp:
                if resp.status != 200:
                    raise WeComTransportError(f"HTTP {resp.status}", api=api)
                data = await resp.json(content_type=None)
        except WeComTransportError:
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            message = _SECRET_QUERY_RE.sub(r"\1=***", f"{type(e).__name__}: {e}")
            raise WeComTransportError(message[:200], api=api) from None
        if not isinstance(data, dict):
            raise WeComTransportError("answer is not a JSON object", api=api)
        return data

    async def _call(self, method: str, api: str, *, params: Mapping[str, Any] | None = None,
                    body: Any = None, auth: bool = True) -> dict[str, Any]:
        token_retried = False
        throttled = 0
        transport_failures = 0
        while True:
            query = dict(params or {})
            token = ""
            if auth:
                token = await self.access_token()
                query["access_token"] = token
            try:
                data = await self._request(method, api, query, body)
            except WeComTransportError:
                # Only reads are repeated blindly: a POST may have been carried out already.
                if method == "GET" and transport_failures < self.throttle_retries:
                    await self.sleep(self._backoff(transport_failures))
                    transport_failures += 1
                    continue
                raise
            try:
                errcode = int(data.get("errcode", 0) or 0)
            except (TypeError, ValueError):
                raise WeComTransportError(f"errcode is not a number: {data.get('errcode')!r}", api=api) from None
            if errcode == 0:
                return data
            errmsg = str(data.get("errmsg", ""))
            kind = classify(errcode)
            if kind is ErrorKind.TOKEN and auth and not token_retried:
                token_retried = True
                self._note("wecom.token_rejected", api=api, errcode=errcode)
                await self.invalidate_token(token)
                continue
            if kind is ErrorKind.THROTTLE and throttled < self.throttle_retries:
                delay = self._backoff(throttled)
                self._note("wecom.throttled", api=api, errcode=errcode, retry_in=round(delay, 3))
                await self.sleep(delay)
                throttled += 1
                continue
            raise WeComError(errcode, errmsg, api=api)

    def _note(self, event: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.info(event, **fields)

    # ---------------------------------------------------------------- token

    def _fresh(self, expires_at: datetime | None, now: datetime) -> bool:
        return expires_at is None or now < expires_at

    async def access_token(self, *, force: bool = False) -> str:
        now = self.clock.now()
        if not force and self._token and self._fresh(self._token_expires, now):
            return self._token
        async with self._lock:
            now = self.clock.now()
            if not force and self._token and self._fresh(self._token_expires, now):
                return self._token  # another coroutine fetched it while we waited
            token, expires = await self._shared_token(force)
            self._token, self._token_expires = token, expires
            return token

    async def _shared_token(self, force: bool) -> tuple[str, datetime]:
        if self.token_store is None:
            return await self._fetch_token()
        return await shared_token(self.token_store, self._token_key, self._lease_key, self._owner,
                                  self._fetch_token, force=force, now=self.clock.now, sleep=self.sleep)

    async def _fetch_token(self) -> tuple[str, datetime]:
        token, usable_until, _ = await self._fetch_token_with_expiry()
        return token, usable_until

    async def _fetch_token_with_expiry(self) -> tuple[str, datetime, datetime]:
        self.token_fetches += 1
        data = await self._call("GET", "gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret},
                                auth=False)
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeComTransportError("gettoken answered without access_token", api="gettoken")
        try:
            expires_in = float(data.get("expires_in", 7200))
        except (TypeError, ValueError):
            expires_in = 7200.0
        now = self.clock.now()
        # Refresh a little early: WeCom may invalidate the token at its expiry to the second.
        margin = min(self.TOKEN_MARGIN_SECONDS, expires_in / 10)
        self._note("wecom.token_fetched", expires_in=expires_in)
        return token, now + timedelta(seconds=expires_in - margin), now + timedelta(seconds=expires_in)

    async def invalidate_token(self, token: str) -> None:
        """Forgets `token` (WeCom refused it); a token another coroutine already replaced stays."""
        async with self._lock:
            if self._token == token:
                self._token, self._token_expires = "", None
        if self.token_store is not None and token:
            await self.token_store.delete(self._token_key, only_if_value=token)

    # ---------------------------------------------------------------- app messages (doc/90236)

    async def send_message(self, touser: str | Iterable[str], msgtype: str, content: Mapping[str, Any], *,
                           safe: bool = False, enable_duplicate_check: bool = False,
                           duplicate_check_interval: int = 1800, toparty: str = "", totag: str = "") -> SendResult:
        body: dict[str, Any] = {"touser": _join(touser), "msgtype": msgtype, "agentid": self.agent_id,
                                msgtype: dict(content), "safe": int(safe)}
        if toparty:
            body["toparty"] = toparty
        if totag:
            body["totag"] = totag
        if enable_duplicate_check:
            body["enable_duplicate_check"] = 1
            body["duplicate_check_interval"] = duplicate_check_interval
        data = await self._call("POST", "message/send", body=body)
        return SendResult(msgid=str(data.get("msgid", "")), response_code=str(data.get("response_code", "") or ""),
                          invalid_users=_split(data.get("invaliduser")), invalid_parties=_split(data.get("invalidparty")),
                          invalid_tags=_split(data.get("invalidtag")),
                          unlicensed_users=_split(data.get("unlicenseduser")))

    async def send_text(self, touser: str | Iterable[str], content: str, **options: Any) -> SendResult:
        return await self.send_message(touser, "text", {"content": content}, **options)

    async def send_markdown(self, touser: str | Iterable[str], content: str, **options: Any) -> SendResult:
        return await self.send_message(touser, "markdown", {"content": content}, **options)

    async def send_textcard(self, touser: str | Iterable[str], title: str, description: str, url: str,
                            btntxt: str = "", **options: Any) -> SendResult:
        card = {"title": title, "description": description, "url": url}
        if btntxt:
            card["btntxt"] = btntxt
        return await self.send_message(touser, "textcard", card, **options)

    async def send_template_card(self, touser: str | Iterable[str], template_card: Mapping[str, Any],
                                 **options: Any) -> SendResult:
        """Returns msgid and response_code (keep the latter: it updates this card once)."""
        check_template_card(template_card)
        return await self.send_message(touser, "template_card", template_card, **options)

    async def update_template_card(self, response_code: str, *, userids: Iterable[str] = (),
                                   replace_name: str | None = None,
                                   template_card: Mapping[str, Any] | None = None, atall: bool = False,
                                   partyids: Iterable[int] = (), tagids: Iterable[int] = ()) -> None:
        """Either greys the button out with `replace_name` or replaces the whole card. The
        response_code is single-use (72 h)."""
        if (replace_name is None) == (template_card is None):
            raise ValueError("give exactly one of replace_name or template_card")
        body: dict[str, Any] = {"agentid": self.agent_id, "response_code": response_code}
        if atall:
            body["atall"] = 1
        else:
            body["userids"] = list(userids)
            if partyids:
                body["partyids"] = list(partyids)
            if tagids:
                body["tagids"] = list(tagids)
        if replace_name is not None:
            body["button"] = {"replace_name": replace_name}
        else:
            body["template_card"] = dict(template_card or {})
        await self._call("POST", "message/update_template_card", body=body)

    async def recall(self, msgid: str) -> None:
        await self._call("POST", "message/recall", body={"msgid": msgid})

    # ---------------------------------------------------------------- customer contact

    async def get_external_contact(self, external_userid: str, cursor: str = "") -> dict[str, Any]:
        """One page: external_contact, follow_user[] and next_cursor (when >500 followers)."""
        params = {"external_userid": external_userid}
        if cursor:
            params["cursor"] = cursor
        data = await self._call("GET", "externalcontact/get", params=params)
        return {k: v for k, v in data.items() if k not in ("errcode", "errmsg")}

    async def get_external_contact_all(self, external_userid: str) -> dict[str, Any]:
        """Every page merged: follow_user holds all followers."""
        first = await self.get_external_contact(external_userid)
        follow = list(first.get("follow_user") or [])
        cursor = first.get("next_cursor") or ""
        seen = set()
        while cursor and cursor not in seen:
            seen.add(cursor)
            page = await self.get_external_contact(external_userid, cursor)
            follow.extend(page.get("follow_user") or [])
            cursor = page.get("next_cursor") or ""
        first["follow_user"] = follow
        first.pop("next_cursor", None)
        return first

    async def send_welcome_msg(self, welcome_code: str, text: str = "",
                               attachments: Iterable[Mapping[str, Any]] = ()) -> None:
        """Valid 20 s after the add event and usable once; call it straight from the event."""
        attachments = list(attachments)
        if not text and not attachments:
            raise ValueError("send_welcome_msg needs text or attachments")
        body: dict[str, Any] = {"welcome_code": welcome_code}
        if text:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = attachments
        await self._call("POST", "externalcontact/send_welcome_msg", body=body)

    async def remark(self, userid: str, external_userid: str, *, remark: str | None = None,
                     description: str | None = None, remark_company: str | None = None,
                     remark_mobiles: Iterable[str] | None = None, remark_pic_mediaid: str | None = None) -> None:
        body: dict[str, Any] = {"userid": userid, "external_userid": external_userid}
        for key, value in (("remark", remark), ("description", description), ("remark_company", remark_company),
                           ("remark_pic_mediaid", remark_pic_mediaid)):
            if value is not None:
                body[key] = value
        if remark_mobiles is not None:
            body["remark_mobiles"] = list(remark_mobiles)  # overwrites the whole list
        if len(body) == 2:
            raise ValueError("remark needs at least one field to set")
        await self._call("POST", "externalcontact/remark", body=body)

    async def mark_tag(self, userid: str, external_userid: str, add_tag: Iterable[str] = (),
                       remove_tag: Iterable[str] = ()) -> None:
        add, remove = list(add_tag), list(remove_tag)
        if not add and not remove:
            raise ValueError("mark_tag needs add_tag or remove_tag")
        body: dict[str, Any] = {"userid": userid, "external_userid": external_userid}
        if add:
            body["add_tag"] = add
        if remove:
            body["remove_tag"] = remove
        await self._call("POST", "externalcontact/mark_tag", body=body)

    # ---------------------------------------------------------------- directory (doc/90208, doc/90201)

    async def list_departments(self, root_id: int | None = None) -> list[dict[str, Any]]:
        """The department `root_id` and its whole subtree (every department when None), as far as
        the app's visibility scope reaches: {id, name, parentid, order, department_leader[]}."""
        params = {"id": root_id} if root_id is not None else {}
        data = await self._call("GET", "department/list", params=params)
        return [d for d in data.get("department") or [] if isinstance(d, dict)]

    async def list_department_users(self, dept_id: int) -> list[dict[str, Any]]:
        """The direct members of one department: {userid, name, department[], is_leader_in_dept[],
        main_department, status (1 active, 2 disabled, 4 not activated, 5 left)}. Apps created
        after 2022-06-20 get no mobile/email here."""
        data = await self._call("GET", "user/list", params={"department_id": dept_id})
        return [u for u in data.get("userlist") or [] if isinstance(u, dict)]

    # ---------------------------------------------------------------- group robot (doc/91770)

    async def webhook_send(self, key: str | None = None, *, text: str | None = None, markdown: str | None = None,
                           mentioned_list: Iterable[str] = (), mentioned_mobile_list: Iterable[str] = (),
                           image: bytes | None = None) -> None:
        """Posts to a group robot (20 messages per minute per robot). Markdown cannot carry
        mentioned_list, so mentions are written into its content as <@userid>."""
        key = key or self.robot_key
        if not key:
            raise ValueError("no robot key given and [wecom] manager_robot_key is empty")
        if image is not None:
            # Images go inline: base64 plus the md5 of the raw bytes, at most 2 MB.
            import base64
            import hashlib

            if len(image) > 2 * 1024 * 1024:
                raise ValueError("robot images are limited to 2 MB")
            body_img = {"msgtype": "image", "image": {"base64": base64.b64encode(image).decode(),
                                                      "md5": hashlib.md5(image).hexdigest()}}
            await self._call("POST", "webhook/send", params={"key": key}, body=body_img, auth=False)
            return
        if (text is None) == (markdown is None):
            raise ValueError("give exactly one of text or markdown")
        mentions = list(mentioned_list)
        if text is not None:
            msg: dict[str, Any] = {"content": text}
            if mentions:
                msg["mentioned_list"] = mentions
            mobiles = list(mentioned_mobile_list)
            if mobiles:
                msg["mentioned_mobile_list"] = mobiles
            body = {"msgtype": "text", "text": msg}
        else:
            content = markdown or ""
            if mentions:
                content += "\n" + " ".join(f"<@{m}>" for m in mentions)
            body = {"msgtype": "markdown", "markdown": {"content": content}}
        await self._call("POST", "webhook/send", params={"key": key}, body=body, auth=False)


def check_template_card(card: Mapping[str, Any]) -> None:
    """WeCom's task_id rules, checked before the call so a bad card fails fast and clearly:
    required for button/vote/multiple cards and for text/news cards with an action_menu;
    at most 128 bytes of [0-9A-Za-z_-@]."""
    card_type = card.get("card_type")
    if not isinstance(card_type, str) or not card_type:
        raise ValueError("template_card needs a card_type")
    task_id = card.get("task_id")
    needs_task = card_type in CALLBACK_CARD_TYPES or bool(card.get("action_menu"))
    if needs_task and not task_id:
        raise ValueError(f"a {card_type} card{' with action_menu' if card.get('action_menu') else ''} needs a task_id")
    if task_id is not None and (not isinstance(task_id, str) or not TASK_ID_RE.match(task_id)):
        raise ValueError("task_id must be 1-128 characters of 0-9 A-Z a-z _ - @")
    if card_type == "text_notice" and not card.get("card_action"):
        raise ValueError("a text_notice card needs card_action")
