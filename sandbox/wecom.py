"""A simulated WeCom (企业微信) on loopback: its server API and its callbacks, protocol-faithful.

The tests use it as their fake and `leadbot demo` shows it to people. It is deliberately built
on wechatpy's WeChatCrypto and the documented shapes, never on leadbot's own protocol code
(bot.platforms), so a bug there cannot hide itself here.

API side (``/cgi-bin/...``): gettoken issues tokens that expire on the injected clock (42001 once
expired, 40014 unknown, 41001 missing); message/send answers msgid (+ response_code for
callback-capable template cards), 81013 when every recipient is invalid, and silently drops
messages beyond 30 per member per minute or 1000 per hour (recorded in ``dropped``);
update_template_card honours each response_code once; recall within 24 h;
externalcontact/get (paged by cursor), send_welcome_msg (code valid 20 s, once, else 41051),
remark, mark_tag; webhook/send with 20 per minute per robot (45009 beyond), 93000 for an unknown
robot. Every call is recorded in ``calls``; delivered messages land in ``inbox[userid]``.

Callback side: ``send_friend_added``, ``send_contact_changed``, ``send_card_event``,
``send_text``, ``send_enter_agent`` and ``verify_url`` POST/GET real encrypted callbacks to
``callback_url``; a passive reply to a card event is decrypted and applied to the user's card.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import random
import secrets
import string
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlencode

import aiohttp
import xmltodict
from aiohttp import web
from wechatpy.utils import WeChatSigner
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from leadbot.clock import Clock, SystemClock
from sandbox.wire import cut_to_sent_bytes, escapes_non_ascii

# Errcodes the platform answers (doc/90313 global error codes; see reference/wecom.md).
OK = 0
BUSY = -1
BAD_SECRET = 40001
INVALID_USERID = 40003
INVALID_MSGTYPE = 40008
BAD_CORPID = 40013
INVALID_TOKEN = 40014
# WeCom documents no errcode of its own for a spent or expired response_code (wecom/94888,
# wecom/94945; the global code list, doc/90313, has none either: searched 2026-12-04), so the
# generic "不合法的参数" is the one answered for it, as for any other refused parameter.
INVALID_PARAMETER = 40035
INVALID_AGENTID = 40056
MISSING_TOKEN = 41001
WELCOME_CODE_INVALID = 41051
EXPIRED_TOKEN = 42001
FREQ_LIMIT = 45009
ALL_INVALID = 81013
NOT_EXTERNAL_CONTACT = 84061
INVALID_WEBHOOK = 93000
INVALID_PARTY = 60123

CONCURRENCY_LIMIT = 45033
UNTRUSTED_IP = 60020
TEXT_MAX_BYTES = 2048  # text and markdown content (doc/90236): cut beyond, counted as sent (W8)

# The documented refusals and throttles the sandbox answers on demand (set_fault), each with
# WeCom's own errcode; the sandbox page's "faults" panel lists the same names.
FAULTS: dict[str, str] = {
    "app_45009": "app API frequency limit: 45009 on every app call",
    "app_45033": "app API concurrency limit: 45033",
    "busy": "system busy: -1",
    "robot_45009": "group robot over 20/min: 45009",
    "token_expired": "every issued access_token expires now: 42001 (one shot)",
}
# WeChat plug-in (微工作台) users see no template card (doc/90236; conformance W3): what they get.
PLUGIN_PLACEHOLDER = "[该消息类型暂不能展示，请在企业微信中查看]"
PLUGIN_UNSHOWN = {"template_card", "markdown"}
# conformance W10 (wecom/94888, suspected): template-card text limits, in 字 (a CJK character is
# one, two Latin letters one). A recent copy of the page calls longer values display
# recommendations; the reading that cannot lose a card is that they may be refused, at the
# older, stricter numbers, so the sandbox refuses anything longer (40035).
CARD_ZI_LIMITS = {("main_title", "title"): 26, ("main_title", "desc"): 30, ("source", "desc"): 13}
SUB_TITLE_ZI = 112
KEYNAME_ZI, VALUE_ZI, BUTTON_TEXT_ZI, JUMP_TITLE_ZI = 5, 26, 10, 13

CALLBACK_CARD_TYPES = {"button_interaction", "vote_interaction", "multiple_interaction"}
SUPPORTED_MSGTYPES = {"text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown",
                      "miniprogram_notice", "template_card"}
_NONCE_CHARS = string.ascii_letters + string.digits


def _cdata(value: Any) -> str:
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml(fields: Mapping[str, Any]) -> str:
    """Plain callback XML the way WeCom writes it: strings in CDATA, numbers bare."""
    def render(name: str, value: Any) -> str:
        if isinstance(value, Mapping):
            return f"<{name}>" + "".join(render(k, v) for k, v in value.items()) + f"</{name}>"
        if isinstance(value, list):
            return "".join(render(name, v) for v in value)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"<{name}>{value}</{name}>"
        return f"<{name}>{_cdata(value)}</{name}>"
    return "<xml>" + "".join(render(k, v) for k, v in fields.items()) + "</xml>"


@dataclass
class ApiCall:
    api: str
    method: str
    query: dict[str, str]
    body: Any
    response: dict[str, Any]
    at: datetime


@dataclass
class CallbackResult:
    """What leadbot answered to one simulated callback."""

    status: int
    body: str
    plain: str  # the plaintext XML that was encrypted and sent
    query: dict[str, str] = field(default_factory=dict)
    reply_plain: str = ""  # decrypted passive reply, if any
    reply_applied: bool = False  # card events: the passive reply came in time and was applied
    response_code: str = ""  # card events: the ResponseCode the event carried
    reply: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def url_verified(self) -> bool:
        """For verify_url: leadbot answered 200 with exactly the decrypted echostr."""
        return self.status == 200 and self.body == self.plain


class SimulatedWeCom:
    TOKEN_TTL = timedelta(seconds=7200)
    MEMBER_PER_MINUTE = 30
    MEMBER_PER_HOUR = 1000
    ROBOT_PER_MINUTE = 20
    WELCOME_CODE_TTL = timedelta(seconds=20)
    RESPONSE_CODE_TTL = timedelta(hours=72)
    RECALL_WINDOW = timedelta(hours=24)
    # A passive reply to a card event counts only inside WeCom's 5 s answer window (wecom/90241;
    # conformance W2). Measured on the real round trip plus ``callback_latency``, so a test can
    # make leadbot "slow" without sleeping.
    PASSIVE_REPLY_WINDOW = 5.0

    def __init__(self, *, corp_id: str = "wwsandbox0000000001", secret: str = "sandbox-secret",
                 agent_id: int = 1000002, token: str = "sandboxtoken",
                 encoding_aes_key: str = "", clock: Clock | None = None,
                 users: Iterable[str] | None = None, robots: Iterable[str] | None = None,
                 callback_url: str = "", page_size: int = 500,
                 latency: tuple[float, float] | None = None, seed: int = 0) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = int(agent_id)
        self.token = token
        self.encoding_aes_key = encoding_aes_key or base64.b64encode(secrets.token_bytes(32)).decode()[:43]
        self.clock = clock or SystemClock()
        self.users: set[str] | None = set(users) if users is not None else None
        self.robots: set[str] | None = set(robots) if robots is not None else None
        self.callback_url = callback_url
        self.page_size = page_size
        # (min, max) seconds before an API call is answered (uniform), e.g. (0, 0.15); None: at once.
        self.latency = latency
        self._latency_rng = random.Random(seed)
        self.crypto = WeChatCrypto(self.token, self.encoding_aes_key, self.corp_id)

        self.calls: list[ApiCall] = []
        self.inbox: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.messages: dict[str, dict[str, Any]] = {}
        # Called with each message record as message/send accepts it (benchmarks time cards here).
        self.on_accepted: list[Callable[[dict[str, Any]], None]] = []
        self.task_ids: set[str] = set()  # template_card task_ids accepted so far (unique per app)
        self.repeated_task_id = "drop"  # what a repeated task_id gets: "drop" (errcode 0) | "refuse"
        self.repeated_task_ids: list[str] = []
        self.dropped: list[dict[str, Any]] = []
        self.robot_messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.contacts: dict[str, dict[str, Any]] = {}
        self.welcome_messages: list[dict[str, Any]] = []
        self.callbacks: list[CallbackResult] = []
        # Each documented refusal can be switched off in a test (all on by default).
        self.enforce_codes = True  # W1: a response_code updates once, within 72 h
        self.enforce_reply_window = True  # W2: passive replies count only inside 5 s
        self.validate_updates = True  # W7: update bodies are checked like sends
        self.callback_latency = 0.0  # seconds added to each callback's measured round trip
        self.late_replies: list[dict[str, Any]] = []  # passive replies that came too late
        self.departments: dict[int, dict[str, Any]] = {}  # the directory: add_department / add_member
        self.faults: dict[str, int | None] = {}  # FAULTS name -> calls left (None: until cleared)
        self.plugin_users: set[str] = set()  # members who read WeCom only in WeChat (微工作台)
        self.ignored: list[dict[str, Any]] = []  # fields WeCom accepted but did not apply
        self.members: dict[str, dict[str, Any]] = {}

        self._tokens: dict[str, datetime] = {}
        self._current_token = ""
        self._token_seq = itertools.count(1)
        self._msg_seq = itertools.count(1)
        self._member_sends: dict[str, deque[datetime]] = defaultdict(deque)
        self._robot_sends: dict[str, deque[datetime]] = defaultdict(deque)
        self._response_codes: dict[str, dict[str, Any]] = {}
        self._welcome_codes: dict[str, dict[str, Any]] = {}
        self._forced: dict[str, deque[tuple[int, str]]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ server lifecycle

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/cgi-bin/{api:.+}", self._handle)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        addresses = self._runner.addresses
        bound = addresses[0][1] if addresses else port  # the port the OS picked
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "SimulatedWeCom":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test controls

    def now(self) -> datetime:
        return self.clock.now()

    def expire_tokens(self) -> None:
        """WeCom may end a token early: every issued token answers 42001 from now on."""
        now = self.now()
        for tok in self._tokens:
            self._tokens[tok] = min(self._tokens[tok], now)
        self._current_token = ""

    def revoke_tokens(self) -> None:
        """Forget every token: they answer 40014 (unknown) from now on."""
        self._tokens.clear()
        self._current_token = ""

    def fail_next(self, api: str, errcode: int, times: int = 1, errmsg: str = "") -> None:
        """The next `times` calls of `api` answer `errcode` (e.g. 45009, -1) before any check."""
        for _ in range(times):
            self._forced[api].append((errcode, errmsg or f"sandbox injected errcode {errcode}"))

    def set_fault(self, name: str, times: int | None = None) -> None:
        """Switches a documented refusal on (FAULTS): for the next ``times`` calls it applies
        to, or until clear_fault when None."""
        if name not in FAULTS:
            raise KeyError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        if name == "token_expired":
            self.expire_tokens()
            return
        self.faults[name] = times

    def clear_fault(self, name: str) -> None:
        self.faults.pop(name, None)

    def _take_fault(self, name: str) -> bool:
        if name not in self.faults:
            return False
        left = self.faults[name]
        if left is not None:
            if left <= 1:
                self.faults.pop(name)
            else:
                self.faults[name] = left - 1
        return True

    def use_wechat_plugin(self, *userids: str) -> None:
        """These members read WeCom only through the WeChat plug-in: message/send still answers
        errcode 0, but a template card (or markdown) shows them only a placeholder (W3)."""
        self.plugin_users.update(userids)

    def add_users(self, *userids: str) -> None:
        if self.users is None:
            self.users = set()
        self.users.update(userids)

    def seed_contact(self, external_userid: str, *, name: str = "", type: int = 1, unionid: str = "",
                     corp_name: str = "", follow_users: Iterable[str | Mapping[str, Any]] = (),
                     **extra: Any) -> dict[str, Any]:
        contact: dict[str, Any] = {"external_userid": external_userid, "name": name or external_userid,
                                   "type": type, "gender": extra.pop("gender", 0), "avatar": extra.pop("avatar", "")}
        if type == 1 and unionid:
            contact["unionid"] = unionid
        if type == 2:
            contact["corp_name"] = corp_name
            contact["corp_full_name"] = extra.pop("corp_full_name", corp_name)
        contact.update(extra)
        follows = []
        for f in follow_users:
            entry = {"userid": f} if isinstance(f, str) else dict(f)
            entry.setdefault("remark", "")
            entry.setdefault("description", "")
            entry.setdefault("createtime", int(self.now().timestamp()))
            entry.setdefault("tags", [])
            entry.setdefault("remark_mobiles", [])
            entry.setdefault("add_way", 1)
            entry.setdefault("state", "")
            follows.append(entry)
        self.contacts[external_userid] = {"external_contact": contact, "follow_user": follows}
        return self.contacts[external_userid]

    def add_department(self, id: int, name: str, *, parentid: int = 1, leaders: Iterable[str] = (),
                       order: int = 0) -> dict[str, Any]:
        """A department of the directory (department/list); `leaders` are its department_leader."""
        dept = {"id": int(id), "name": name, "name_en": "", "department_leader": list(leaders),
                "parentid": 0 if int(id) == 1 else int(parentid), "order": order}
        self.departments[int(id)] = dept
        return dept

    def add_member(self, userid: str, name: str, department: Iterable[int] = (1,), *, mobile: str = "",
                   leader_in: Iterable[int] = (), status: int = 1, main_department: int | None = None,
                   position: str = "") -> dict[str, Any]:
        """A member (user/list). status: 1 active, 2 disabled, 4 not activated, 5 left the
        company. Members also become valid message recipients."""
        depts = [int(d) for d in department]
        leads = {int(d) for d in leader_in}
        member: dict[str, Any] = {"userid": userid, "name": name, "department": depts,
                                  "order": [0] * len(depts), "position": position, "status": status,
                                  "is_leader_in_dept": [1 if d in leads else 0 for d in depts],
                                  "main_department": main_department if main_department is not None
                                  else (depts[0] if depts else 1), "direct_leader": []}
        if mobile:
            member["mobile"] = mobile  # absent for apps created after 2022-06-20 (leave it empty)
        self.members[userid] = member
        if status in (1, 4):
            self.add_users(userid)
        return member

    def remove_member(self, userid: str) -> None:
        """The member was deleted from the directory: gone from user/list and from recipients."""
        self.members.pop(userid, None)
        if self.users is not None:
            self.users.discard(userid)

    def calls_to(self, api: str) -> list[ApiCall]:
        return [c for c in self.calls if c.api == api]

    def sent(self, api: str = "message/send") -> list[Any]:
        return [c.body for c in self.calls if c.api == api]

    def messages_for(self, userid: str) -> list[dict[str, Any]]:
        return list(self.inbox.get(userid, []))

    def issue_welcome_code(self, userid: str, external_userid: str) -> str:
        code = "WC" + secrets.token_hex(12)
        self._welcome_codes[code] = {"userid": userid, "external_userid": external_userid,
                                     "issued_at": self.now(), "used": False}
        return code

    def issue_response_code(self, task_id: str, userids: Iterable[str], msgid: str = "") -> str:
        code = "RC" + secrets.token_hex(16)
        self._response_codes[code] = {"task_id": task_id, "userids": list(userids), "msgid": msgid,
                                      "issued_at": self.now(), "used": False}
        return code

    # ------------------------------------------------------------------ API dispatch

    async def _handle(self, request: web.Request) -> web.Response:
        api = request.match_info["api"]
        query = dict(request.query)
        body: Any = None
        self._escaped = False
        if request.method == "POST":
            raw = await request.read()
            self._escaped = escapes_non_ascii(raw)
            try:
                body = json.loads(raw.decode("utf-8")) if raw else {}
            except (ValueError, UnicodeDecodeError):
                body = None
        response = self._answer(api, request.method, query, body)
        self.calls.append(ApiCall(api, request.method, query, body, response, self.now()))
        if self.latency and api != "gettoken":
            # The message counted (and was delivered or dropped) on arrival; its answer takes a
            # while: a sender that counts a message only from its answer counts it too late.
            lo, hi = self.latency
            await asyncio.sleep(lo + (hi - lo) * self._latency_rng.random())
        return web.json_response(response, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    def _answer(self, api: str, method: str, query: dict[str, str], body: Any) -> dict[str, Any]:
        if self._forced.get(api):
            code, msg = self._forced[api].popleft()
            return _err(code, msg)
        if api == "gettoken":
            return self._gettoken(query)
        if api == "webhook/send":
            if self._take_fault("robot_45009"):
                return _err(FREQ_LIMIT, "api freq out of limit")
            return self._webhook_send(query, body)
        token_error = self._check_token(query.get("access_token"))
        if token_error is not None:
            return token_error
        if self._take_fault("app_45009"):
            return _err(FREQ_LIMIT, "api freq out of limit")
        if self._take_fault("app_45033"):
            return _err(CONCURRENCY_LIMIT, "api concurrent out of limit")
        if self._take_fault("busy"):
            return _err(BUSY, "system busy")
        if method == "POST" and not isinstance(body, dict):
            return _err(47001, "data format error")
        handler = {
            "message/send": self._message_send,
            "message/update_template_card": self._update_template_card,
            "message/recall": self._recall,
            "externalcontact/send_welcome_msg": self._send_welcome_msg,
            "externalcontact/remark": self._remark,
            "externalcontact/mark_tag": self._mark_tag,
        }.get(api)
        if api == "externalcontact/get":
            return self._external_contact_get(query)
        if api in ("department/list", "user/list") and method == "GET":
            return self._directory_answer(api, query)
        if handler is None:
            return _err(60011 if api.startswith("externalcontact/") else 40035, f"sandbox has no api {api}")
        return handler(body)

    # ------------------------------------------------------------------ token

    def _gettoken(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("corpid") != self.corp_id:
            return _err(BAD_CORPID, "invalid corpid")
        if query.get("corpsecret") != self.secret:
            return _err(BAD_SECRET, "invalid credential, secret is wrong")
        now = self.now()
        tok = self._current_token
        if not tok or self._tokens.get(tok, now) <= now:
            tok = f"SBXTOKEN{next(self._token_seq):04d}{secrets.token_hex(8)}"
            self._tokens[tok] = now + self.TOKEN_TTL
            self._current_token = tok
        remaining = int((self._tokens[tok] - now).total_seconds())
        return {"errcode": OK, "errmsg": "ok", "access_token": tok, "expires_in": remaining}

    def _check_token(self, token: str | None) -> dict[str, Any] | None:
        if not token:
            return _err(MISSING_TOKEN, "access_token missing")
        expires = self._tokens.get(token)
        if expires is None:
            return _err(INVALID_TOKEN, "invalid access_token")
        if expires <= self.now():
            return _err(EXPIRED_TOKEN, "access_token expired")
        return None

    # ------------------------------------------------------------------ app messages

    def _message_send(self, body: dict[str, Any]) -> dict[str, Any]:
        msgtype = body.get("msgtype")
        if msgtype not in SUPPORTED_MSGTYPES or not isinstance(body.get(msgtype), dict):
            return _err(INVALID_MSGTYPE, "invalid message type")
        if str(body.get("agentid")) != str(self.agent_id):
            return _err(INVALID_AGENTID, "invalid agentid")
        content = body[msgtype]
        if msgtype == "template_card":
            problem = _template_card_problem(content)
            if problem:
                return _err(INVALID_PARAMETER, problem)
            if content.get("task_id") in self.task_ids:
                # A task_id is unique per app with no documented expiry (wecom/94888, conformance
                # W6), and a repeat delivers nothing. No errcode is documented for it: integrators
                # report errcode 0 with nothing shown (the default, "drop": the harsher reading,
                # a new card under an old id vanishes); "refuse" answers the generic 40035.
                self.repeated_task_ids.append(content["task_id"])
                if self.repeated_task_id == "refuse":
                    return _err(INVALID_PARAMETER, f"task_id {content['task_id']} exists")
                return {"errcode": OK, "errmsg": "ok", "invaliduser": "", "invalidparty": "", "invalidtag": "",
                        "unlicenseduser": "", "msgid": f"sbxmsg{next(self._msg_seq):08d}{secrets.token_hex(4)}"}
        touser = str(body.get("touser", ""))
        requested = [u for u in touser.split("|") if u]
        if requested == ["@all"]:
            requested = sorted(self.users or [])
        valid = [u for u in requested if self.users is None or u in self.users]
        invalid = [u for u in requested if u not in valid]
        if not valid:
            return {"errcode": ALL_INVALID, "errmsg": "all touser invalid", "invaliduser": "|".join(invalid)}
        now = self.now()
        msgid = f"sbxmsg{next(self._msg_seq):08d}{secrets.token_hex(4)}"
        response_code = ""
        if msgtype == "template_card" and (content.get("card_type") in CALLBACK_CARD_TYPES
                                           or content.get("action_menu")):
            response_code = self.issue_response_code(content.get("task_id", ""), valid, msgid)
        record = {"msgid": msgid, "msgtype": msgtype, "content": content, "to": valid, "at": now,
                  "recalled": False, "task_id": content.get("task_id", "") if msgtype == "template_card" else ""}
        self.messages[msgid] = record
        for listener in self.on_accepted:
            listener(record)
        if record["task_id"]:
            self.task_ids.add(record["task_id"])
        if msgtype in ("text", "markdown") and isinstance(content.get("content"), str):
            # Cut at 2048 bytes, counted as they arrived: \u escapes cost six bytes a character (W8).
            content = {**content, "content": cut_to_sent_bytes(content["content"], TEXT_MAX_BYTES,
                                                               getattr(self, "_escaped", False))}
        for user in valid:
            if self._over_member_limit(user, now):
                # WeCom drops the excess without telling the sender (doc/90236): errcode stays 0.
                self.dropped.append({"userid": user, "msgid": msgid, "msgtype": msgtype, "at": now})
                continue
            if user in self.plugin_users and msgtype in PLUGIN_UNSHOWN:
                # conformance W3 (doc/90236): the plug-in shows no template card; errcode stays 0.
                self.inbox[user].append({"msgid": msgid, "msgtype": "text", "content": {"content": PLUGIN_PLACEHOLDER},
                                         "at": now, "task_id": "", "recalled": False, "replace_name": "",
                                         "card": None, "unshown": msgtype})
                continue
            self.inbox[user].append({"msgid": msgid, "msgtype": msgtype, "content": content, "at": now,
                                     "task_id": record["task_id"], "recalled": False,
                                     "replace_name": "", "card": content if msgtype == "template_card" else None})
        resp: dict[str, Any] = {"errcode": OK, "errmsg": "ok", "invaliduser": "|".join(invalid),
                                "invalidparty": "", "invalidtag": "", "unlicenseduser": "", "msgid": msgid}
        if response_code:
            resp["response_code"] = response_code
        return resp

    def _over_member_limit(self, user: str, now: datetime) -> bool:
        sends = self._member_sends[user]
        while sends and sends[0] <= now - timedelta(hours=1):
            sends.popleft()
        last_minute = sum(1 for t in sends if t > now - timedelta(minutes=1))
        if last_minute >= self.MEMBER_PER_MINUTE or len(sends) >= self.MEMBER_PER_HOUR:
            return True
        sends.append(now)
        return False

    def _update_template_card(self, body: dict[str, Any]) -> dict[str, Any]:
        if str(body.get("agentid")) != str(self.agent_id):
            return _err(INVALID_AGENTID, "invalid agentid")
        code = body.get("response_code")
        entry = self._response_codes.get(code) if isinstance(code, str) else None
        now = self.now()
        if entry is None:
            return _err(INVALID_PARAMETER, "invalid response_code")
        if self.enforce_codes and (entry["used"] or now - entry["issued_at"] > self.RESPONSE_CODE_TTL):
            # One update per code, within 72 h (wecom/94888: "一个code只能调用一次该接口，且只能在72小时内调用").
            return _err(INVALID_PARAMETER, "invalid response_code: used or expired")
        has_button = isinstance(body.get("button"), dict)
        has_card = isinstance(body.get("template_card"), dict)
        if has_button == has_card:
            return _err(INVALID_PARAMETER, "give either button or template_card")
        if self.validate_updates:
            problem = self._update_problem(entry, body)
            if problem:
                return _err(INVALID_PARAMETER, problem)
        entry["used"] = True
        targets = entry["userids"] if body.get("atall") else list(body.get("userids") or [])
        for user in targets:
            for msg in self.inbox.get(user, []):
                if msg["msgtype"] == "template_card" and msg["task_id"] == entry["task_id"]:
                    if has_button:
                        msg["replace_name"] = body["button"].get("replace_name", "")
                    else:
                        msg["card"] = body["template_card"]
        return {"errcode": OK, "errmsg": "ok", "invaliduser": []}

    def _update_problem(self, entry: Mapping[str, Any], body: Mapping[str, Any]) -> str:
        """An update body is checked like a send (W7): a whole new card must be a valid card (a
        button_interaction card needs its button_list); replacing the button text is only for
        the card types that have buttons."""
        original = self._original_card(entry)
        if isinstance(body.get("button"), dict):
            if not str(body["button"].get("replace_name") or ""):
                return "button.replace_name required"
            if original is not None and original.get("card_type") not in CALLBACK_CARD_TYPES:
                return "button update needs a button, vote or multiple card"
            return ""
        card = body["template_card"]
        problem = _template_card_problem(card)
        if problem:
            return problem
        if card.get("task_id") and card.get("task_id") != entry.get("task_id"):
            return "task_id does not match the response_code's card"
        return ""

    def _original_card(self, entry: Mapping[str, Any]) -> dict[str, Any] | None:
        for record in self.messages.values():
            if record.get("task_id") and record["task_id"] == entry.get("task_id"):
                return record.get("content")
        return None

    def _recall(self, body: dict[str, Any]) -> dict[str, Any]:
        record = self.messages.get(body.get("msgid", ""))
        if record is None or record["recalled"] or self.now() - record["at"] > self.RECALL_WINDOW:
            return _err(INVALID_PARAMETER, "invalid msgid: unknown, recalled or older than 24 h")
        record["recalled"] = True
        for user in record["to"]:
            for msg in self.inbox.get(user, []):
                if msg["msgid"] == record["msgid"]:
                    msg["recalled"] = True
        return {"errcode": OK, "errmsg": "ok"}

    # ------------------------------------------------------------------ customer contact

    def _external_contact_get(self, query: dict[str, str]) -> dict[str, Any]:
        contact = self.contacts.get(query.get("external_userid", ""))
        if contact is None:
            return _err(NOT_EXTERNAL_CONTACT, "not external contact")
        start = int(query["cursor"]) if query.get("cursor", "").isdigit() else 0
        follows = contact["follow_user"]
        page = follows[start:start + self.page_size]
        resp: dict[str, Any] = {"errcode": OK, "errmsg": "ok", "external_contact": contact["external_contact"],
                                "follow_user": page}
        if start + self.page_size < len(follows):
            resp["next_cursor"] = str(start + self.page_size)
        return resp

    # ------------------------------------------------------------------ directory

    def _subtree(self, root: int) -> list[int]:
        out, todo = [], [root]
        while todo:
            current = todo.pop(0)
            out.append(current)
            kids = [d["id"] for d in self.departments.values() if d["parentid"] == current and d["id"] != current]
            todo += sorted(kids, key=lambda i: (-self.departments[i]["order"], i))
        return out

    def _directory_answer(self, api: str, query: dict[str, str]) -> dict[str, Any]:
        if api == "department/list":
            if not query.get("id"):
                ids = sorted(self.departments)
            else:
                if not query["id"].isdigit() or int(query["id"]) not in self.departments:
                    return _err(INVALID_PARTY, "invalid party id")
                ids = self._subtree(int(query["id"]))
            return {"errcode": OK, "errmsg": "ok", "department": [dict(self.departments[i]) for i in ids]}
        dept = query.get("department_id", "")
        if not dept.isdigit() or int(dept) not in self.departments:
            return _err(INVALID_PARTY, "invalid party id")
        wanted = set(self._subtree(int(dept))) if query.get("fetch_child") == "1" else {int(dept)}
        users = [dict(m) for m in self.members.values() if wanted & set(m["department"])]
        return {"errcode": OK, "errmsg": "ok", "userlist": users}

    def _follow(self, userid: Any, external_userid: Any) -> dict[str, Any] | None:
        contact = self.contacts.get(external_userid) if isinstance(external_userid, str) else None
        if contact is None:
            return None
        return next((f for f in contact["follow_user"] if f.get("userid") == userid), None)

    def _send_welcome_msg(self, body: dict[str, Any]) -> dict[str, Any]:
        text = (body.get("text") or {}).get("content", "") if isinstance(body.get("text"), dict) else ""
        attachments = body.get("attachments") or []
        if not text and not attachments:
            return _err(INVALID_PARAMETER, "text and attachments cannot both be empty")
        if len(attachments) > 9:
            return _err(INVALID_PARAMETER, "at most 9 attachments")
        entry = self._welcome_codes.get(body.get("welcome_code", ""))
        if entry is None or entry["used"] or self.now() - entry["issued_at"] > self.WELCOME_CODE_TTL:
            return _err(WELCOME_CODE_INVALID, "welcome_code invalid, expired or already used")
        entry["used"] = True
        self.welcome_messages.append({"userid": entry["userid"], "external_userid": entry["external_userid"],
                                      "text": text, "attachments": attachments, "at": self.now()})
        return {"errcode": OK, "errmsg": "ok"}

    def _remark(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = ("remark", "description", "remark_company", "remark_mobiles", "remark_pic_mediaid")
        if not any(k in body for k in fields):
            return _err(INVALID_PARAMETER, "nothing to remark")
        follow = self._follow(body.get("userid"), body.get("external_userid"))
        if follow is None:
            return _err(NOT_EXTERNAL_CONTACT, "not external contact")
        contact = self.contacts[body["external_userid"]]["external_contact"]
        for k in fields:
            if k not in body:
                continue
            if k == "remark_company":
                # conformance W4: remark_company takes effect only for WeChat-user contacts
                # (type 1), and externalcontact/get returns it as follow_user[].remark_corp_name.
                if contact.get("type") != 1:
                    self.ignored.append({"api": "externalcontact/remark", "field": k,
                                         "external_userid": body["external_userid"], "at": self.now()})
                    continue
                follow["remark_corp_name"] = body[k]
                continue
            follow[k] = body[k]
        return {"errcode": OK, "errmsg": "ok"}

    def _mark_tag(self, body: dict[str, Any]) -> dict[str, Any]:
        add, remove = list(body.get("add_tag") or []), list(body.get("remove_tag") or [])
        if not add and not remove:
            return _err(INVALID_PARAMETER, "add_tag and remove_tag cannot both be empty")
        follow = self._follow(body.get("userid"), body.get("external_userid"))
        if follow is None:
            return _err(NOT_EXTERNAL_CONTACT, "not external contact")
        tags = [t for t in follow.get("tags", []) if t.get("tag_id") not in remove]
        have = {t.get("tag_id") for t in tags}
        tags += [{"tag_id": t, "type": 1, "tag_name": t, "group_name": ""} for t in add if t not in have]
        follow["tags"] = tags
        return {"errcode": OK, "errmsg": "ok"}

    # ------------------------------------------------------------------ group robot

    def _webhook_send(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        key = query.get("key", "")
        if not key or (self.robots is not None and key not in self.robots):
            return _err(INVALID_WEBHOOK, "invalid webhook url")
        if not isinstance(body, dict) or body.get("msgtype") not in (
                "text", "markdown", "markdown_v2", "image", "news", "file", "voice", "template_card"):
            return _err(INVALID_MSGTYPE, "invalid message type")
        now = self.now()
        sends = self._robot_sends[key]
        while sends and sends[0] <= now - timedelta(minutes=1):
            sends.popleft()
        if len(sends) >= self.ROBOT_PER_MINUTE:
            return _err(FREQ_LIMIT, "api freq out of limit")
        sends.append(now)
        self.robot_messages[key].append({"msgtype": body["msgtype"], "body": body, "at": now})
        return {"errcode": OK, "errmsg": "ok"}

    # ------------------------------------------------------------------ callbacks to leadbot

    def _nonce(self) -> str:
        return "".join(secrets.choice(_NONCE_CHARS) for _ in range(10))

    def encrypt_callback(self, plain_xml: str, *, timestamp: int | None = None,
                         nonce: str | None = None) -> tuple[dict[str, str], bytes]:
        """(query, body) exactly as WeCom POSTs an app callback."""
        ts = str(timestamp if timestamp is not None else int(self.now().timestamp()))
        nonce = nonce or self._nonce()
        out = xmltodict.parse(self.crypto.encrypt_message(plain_xml, nonce, ts))["xml"]
        body = (f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName><Encrypt>{_cdata(out['Encrypt'])}</Encrypt>"
                f"<AgentID>{_cdata(self.agent_id)}</AgentID></xml>")
        return {"msg_signature": out["MsgSignature"], "timestamp": ts, "nonce": nonce}, body.encode()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._session

    async def post_raw(self, query: Mapping[str, str], body: bytes) -> tuple[int, str]:
        if not self.callback_url:
            raise RuntimeError("set callback_url to leadbot's /callbacks/wecom first")
        url = f"{self.callback_url}?{urlencode(dict(query))}"
        async with self._http().post(url, data=body, headers={"Content-Type": "text/xml"}) as resp:
            return resp.status, await resp.text()

    async def post_callback(self, plain_xml: str, *, timestamp: int | None = None) -> CallbackResult:
        query, body = self.encrypt_callback(plain_xml, timestamp=timestamp)
        status, text = await self.post_raw(query, body)
        result = CallbackResult(status=status, body=text, plain=plain_xml, query=query)
        if status == 200 and text.strip():
            result.reply_plain, result.reply = self._open_reply(text)
        self.callbacks.append(result)
        return result

    async def resend(self, previous: CallbackResult) -> CallbackResult:
        """WeCom's retry of an unanswered callback: the same event, freshly encrypted."""
        return await self.post_callback(previous.plain, timestamp=int(previous.query.get("timestamp") or 0) or None)

    def _open_reply(self, text: str) -> tuple[str, dict[str, Any]]:
        """Checks and decrypts leadbot's passive reply like WeCom would."""
        envelope = xmltodict.parse(text)["xml"]
        encrypt = envelope["Encrypt"]
        expected = _signature(self.token, envelope["TimeStamp"], envelope["Nonce"], encrypt)
        if expected != envelope["MsgSignature"]:
            raise AssertionError("passive reply signature does not verify")
        plain = PrpCrypto(self.crypto.key).decrypt(encrypt, self.corp_id)
        return plain, xmltodict.parse(plain)["xml"]

    def _event(self, from_user: str, event: str, **fields: Any) -> dict[str, Any]:
        return {"ToUserName": self.corp_id, "FromUserName": from_user,
                "CreateTime": int(self.now().timestamp()), "MsgType": "event", "Event": event, **fields}

    async def send_friend_added(self, userid: str, external_userid: str, *, state: str = "",
                                welcome_code: bool | str = True, half: bool = False) -> CallbackResult:
        """A customer added `userid` (add_external_contact; half=True: add_half_external_contact)."""
        code = welcome_code if isinstance(welcome_code, str) else (
            self.issue_welcome_code(userid, external_userid) if welcome_code else "")
        contact = self.contacts.get(external_userid)
        if contact is not None and self._follow(userid, external_userid) is None:
            contact["follow_user"].append({"userid": userid, "remark": "", "description": "",
                                           "createtime": int(self.now().timestamp()), "tags": [],
                                           "remark_mobiles": [], "add_way": 1, "state": state})
        fields: dict[str, Any] = {"ChangeType": "add_half_external_contact" if half else "add_external_contact",
                                  "UserID": userid, "ExternalUserID": external_userid}
        if state:
            fields["State"] = state
        if code:
            fields["WelcomeCode"] = code
        return await self.post_callback(_xml(self._event("sys", "change_external_contact", **fields)))

    async def send_contact_changed(self, change_type: str, userid: str, external_userid: str, *,
                                   source: str = "", fail_reason: str = "") -> CallbackResult:
        fields: dict[str, Any] = {"ChangeType": change_type, "UserID": userid, "ExternalUserID": external_userid}
        if source:
            fields["Source"] = source
        if fail_reason:
            fields["FailReason"] = fail_reason
        return await self.post_callback(_xml(self._event("sys", "change_external_contact", **fields)))

    async def send_card_event(self, userid: str, event_key: str, task_id: str, *,
                              card_type: str = "button_interaction",
                              selected: Iterable[tuple[str, Iterable[str]]] = (),
                              menu: bool = False) -> CallbackResult:
        """`userid` tapped a button (or a menu item) of the card `task_id`; a fresh single-use
        ResponseCode comes with it. A passive reply updates that user's copy of the card."""
        code = self.issue_response_code(task_id, [userid])
        fields: dict[str, Any] = {"EventKey": event_key, "TaskId": task_id, "CardType": card_type,
                                  "ResponseCode": code, "AgentID": self.agent_id}
        items = [{"QuestionKey": q, "OptionIds": {"OptionId": list(opts)}} for q, opts in selected]
        if items:
            fields["SelectedItems"] = {"SelectedItem": items}
        event = "template_card_menu_event" if menu else "template_card_event"
        started = time.monotonic()
        result = await self.post_callback(_xml(self._event(userid, event, **fields)))
        result.response_code = code
        elapsed = time.monotonic() - started + self.callback_latency
        if result.reply:
            if self.enforce_reply_window and elapsed > self.PASSIVE_REPLY_WINDOW:
                # Too late: WeCom ignores the answer; the card stays as it was.
                self.late_replies.append({"userid": userid, "task_id": task_id, "elapsed": elapsed,
                                          "reply": result.reply})
            else:
                result.reply_applied = True
                self._apply_passive_reply(userid, task_id, result.reply)
        return result

    def _apply_passive_reply(self, userid: str, task_id: str, reply: dict[str, Any]) -> None:
        card = None
        if reply.get("MsgType") == "update_template_card":
            # The reply's XML card, in the JSON shape a card is shown and checked in (W7: a
            # passive reply is a card like any other; the tapped card keeps its task_id).
            card = {**_card_from_xml(reply.get("TemplateCard") or {}), "task_id": task_id}
            problem = _template_card_problem(card) if self.validate_updates else ""
            if problem:
                self.late_replies.append({"userid": userid, "task_id": task_id, "refused": problem})
                return
        for msg in self.inbox.get(userid, []):
            if msg["msgtype"] != "template_card" or msg["task_id"] != task_id:
                continue
            if reply.get("MsgType") == "update_button":
                msg["replace_name"] = (reply.get("Button") or {}).get("ReplaceName", "")
            elif card is not None:
                msg["card"] = card

    async def send_text(self, userid: str, content: str, *, msgid: str | None = None) -> CallbackResult:
        fields = {"ToUserName": self.corp_id, "FromUserName": userid, "CreateTime": int(self.now().timestamp()),
                  "MsgType": "text", "Content": content,
                  "MsgId": msgid or str(secrets.randbelow(10 ** 19) + 10 ** 18), "AgentID": self.agent_id}
        return await self.post_callback(_xml(fields))

    async def send_enter_agent(self, userid: str) -> CallbackResult:
        return await self.post_callback(_xml(self._event(userid, "enter_agent", EventKey="",
                                                         AgentID=self.agent_id)))

    async def verify_url(self, echo: str | None = None) -> CallbackResult:
        """The GET check WeCom makes when the callback URL is saved; ok when leadbot answers
        the decrypted echostr verbatim."""
        echo = echo or str(secrets.randbelow(10 ** 19))
        ts = str(int(self.now().timestamp()))
        nonce = self._nonce()
        echostr = PrpCrypto(self.crypto.key).encrypt(echo, self.corp_id).decode()
        sig = _signature(self.token, ts, nonce, echostr)
        query = {"msg_signature": sig, "timestamp": ts, "nonce": nonce, "echostr": echostr}
        if not self.callback_url:
            raise RuntimeError("set callback_url to leadbot's /callbacks/wecom first")
        async with self._http().get(self.callback_url, params=query) as resp:
            return CallbackResult(status=resp.status, body=await resp.text(), plain=echo, query=query)


_XML_NAMES = {"KeyName": "keyname", "UserId": "userid", "AppId": "appid", "PagePath": "pagepath",
              "CheckBox": "checkbox"}


def _json_name(xml_name: str) -> str:
    if xml_name in _XML_NAMES:
        return _XML_NAMES[xml_name]
    return "".join(("_" + c.lower()) if c.isupper() and i else c.lower() for i, c in enumerate(xml_name))


def _card_from_xml(value: Any, name: str = "") -> Any:
    """A passive reply's <TemplateCard> (repeated elements for lists, CamelCase names) as the
    template_card JSON of message/send (wecom/90241 maps one onto the other)."""
    if name.endswith("_list"):
        return [_card_from_xml(v) for v in (value if isinstance(value, list) else [value])]
    if isinstance(value, dict):
        return {(key := _json_name(k)): _card_from_xml(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_card_from_xml(v) for v in value]
    if isinstance(value, str) and value.isdigit() and name in ("style", "type", "desc_color"):
        return int(value)
    return value


def _err(code: int, msg: str) -> dict[str, Any]:
    return {"errcode": code, "errmsg": msg}


def _zi(text: Any) -> float:
    """Length in 字: a wide (CJK) character is one, a narrow one half."""
    if not isinstance(text, str):
        return 0
    import unicodedata

    return sum(0 if unicodedata.combining(ch) else (1 if unicodedata.east_asian_width(ch) in ("W", "F") else 0.5)
               for ch in text)


def _template_card_problem(card: Mapping[str, Any]) -> str:
    card_type = card.get("card_type")
    if card_type not in ("text_notice", "news_notice", "button_interaction", "vote_interaction",
                         "multiple_interaction"):
        return f"invalid card_type {card_type!r}"
    task_id = card.get("task_id")
    if (card_type in CALLBACK_CARD_TYPES or card.get("action_menu")) and not task_id:
        return "task_id required"
    if task_id is not None:
        ok = isinstance(task_id, str) and 0 < len(task_id.encode()) <= 128 and all(
            c.isascii() and (c.isalnum() or c in "_-@") for c in task_id)
        if not ok:
            return "invalid task_id"
    if card_type == "button_interaction" and not card.get("button_list"):
        return "button_list required"
    if len(card.get("button_list") or []) > 6:
        return "at most 6 buttons"
    for b in card.get("button_list") or []:
        # conformance W9 (wecom/94888, suspected): the style gallery leaves open which of 3/4 is
        # the negative colour; only 1-4 exist, so anything else is refused as invalid.
        if b.get("style") is not None and b.get("style") not in (1, 2, 3, 4):
            return f"invalid button style {b.get('style')!r}"
        if _zi(b.get("text")) > BUTTON_TEXT_ZI:
            return "button text too long"
    for (part, key), limit in CARD_ZI_LIMITS.items():
        if _zi((card.get(part) or {}).get(key) if isinstance(card.get(part), dict) else None) > limit:
            return f"{part}.{key} too long"
    if _zi(card.get("sub_title_text")) > SUB_TITLE_ZI:
        return "sub_title_text too long"
    for item in card.get("horizontal_content_list") or []:
        if _zi(item.get("keyname")) > KEYNAME_ZI or _zi(item.get("value")) > VALUE_ZI:
            return "horizontal_content_list item too long"
    for item in card.get("jump_list") or []:
        if _zi(item.get("title")) > JUMP_TITLE_ZI:
            return "jump_list title too long"
    if card_type == "text_notice" and not card.get("card_action"):
        return "card_action required"
    return ""


__all__ = ["SimulatedWeCom", "CallbackResult", "ApiCall"]


def _signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """msg_signature (doc/90968), with wechatpy's signer: sha1 of the four values sorted."""
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce, encrypt)
    return signer.signature
