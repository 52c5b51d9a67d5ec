"""A simulated DingTalk: its APIs (tokens, work notices, robot messages, interactive cards, custom
robots, Stream gateway) and its callbacks to leadbot (encrypted events, signed robot messages,
signed card taps, Stream frames), on loopback.

It plays the platform, so it shares no code with leadbot's adapter (bot.platforms.dingtalk): the
event crypto is dingtalk-sdk's DingTalkCrypto and the HMAC signatures are written out from the
documentation. Every API call is recorded in ``calls``; what a person would see lands in
``work_notices``, ``robot_messages``, ``group_messages``, ``session_replies`` and ``cards``.

Where DingTalk documents no error code for a refusal, the sandbox uses a descriptive one and says
so in a comment ("sandbox code").
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import string
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from dingtalk.crypto import DingTalkCrypto

from leadbot.clock import Clock, SystemClock

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"
WORK_MSG_TYPES = {"text", "image", "voice", "file", "link", "oa", "markdown", "action_card"}
ROBOT_MSG_KEYS = {
    "sampleText": ("content",), "sampleMarkdown": ("title", "text"), "sampleImageMsg": ("photoURL",),
    "sampleLink": ("text", "title", "picUrl", "messageUrl"),
    "sampleActionCard": ("title", "text", "singleTitle", "singleURL"),
    "sampleActionCard2": ("title", "text", "actionTitle1", "actionURL1", "actionTitle2", "actionURL2"),
    "sampleActionCard3": ("title", "text", "actionTitle1", "actionURL1", "actionTitle3", "actionURL3"),
    "sampleActionCard4": ("title", "text", "actionTitle1", "actionURL1", "actionTitle4", "actionURL4"),
    "sampleActionCard5": ("title", "text", "actionTitle1", "actionURL1", "actionTitle5", "actionURL5"),
    "sampleActionCard6": ("title", "text", "buttonTitle1", "buttonUrl1", "buttonTitle2", "buttonUrl2"),
    "sampleAudio": ("mediaId", "duration"), "sampleFile": ("mediaId", "fileName", "fileType"),
    "sampleVideo": ("duration", "videoMediaId", "videoType", "picMediaId"),
}


# The documented refusals and throttles the sandbox answers on demand (set_fault), each with
# DingTalk's own answer; the sandbox page's "faults" panel lists the same names.
FAULTS: dict[str, str] = {
    "robot_410100": "custom robot over 20/min: 410100, robot blocked 10 min (D1)",
    "robot_660026": "custom robot send failed, retry: 660026 (D1)",
    "robot_lost_answer": "custom robot posts, but the answer is lost (HTTP 502) (D5)",
    "qpm_403": "new API per-minute limit: HTTP 403 Forbidden.AccessDenied.QpmLimitForAppkeyAndApi (D2)",
    "oapi_90001": "old API: all calls temporarily refused, 90001 (D2)",
    "oapi_90003": "old API: all calls of the corp temporarily refused, 90003 (D2)",
    "oapi_90004": "old API: this API temporarily refused, 90004 (D2)",
    "punish": "IP flood block: {\"status\":1111,\"wait\":5,\"punish\":\"deny\"} (D6)",
    "work_notice_over_limit": "work notices accepted but over 500/user/day: forbidden 143105 (D3)",
    "work_notice_invalid": "work notices accepted but the user is invalid (D3)",
    "batch_flow_control": "robot batchSend: every user in flowControlledStaffIdList (D7)",
    "batch_invalid": "robot batchSend: every user in invalidStaffIdList (D7)",
}
# conformance D11 (dt/create-and-deliver-cards; the per-user reading is suspected): cardParamMap
# keys <= 100 B and values <= 1 KB (UTF-8), and one user's privateData <= 1 KB. Strict reading:
# a user's entry counts whole, as compact UTF-8 JSON ({"cardParamMap": {...}}, escapes included).
PARAM_KEY_MAX_BYTES = 100
PARAM_VALUE_MAX_BYTES = 1024
PRIVATE_DATA_MAX_BYTES = 1024
ROBOT_THROTTLED = 410100  # dt/custom-robots-send-group-messages
ROBOT_SEND_FAILED = 660026  # dt/group-template-robot-message: "send failed, retry"
PUNISH_BODY = {"status": 1111, "wait": 5, "punish": "deny"}  # dt/call-frequency-limit
QUOTA_EXHAUSTED = 20001  # dt/develop-stream-mode-push-server
# The 1 h window in which DingTalk still answers a custom robot's msgUuid with the first result
# (no window is documented; an hour covers every retry leadbot makes).
MSG_UUID_MEMORY = timedelta(hours=1)


def _rand(n: int = 16) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def _event_ack_ok(ack: Mapping[str, Any]) -> bool:
    try:
        data = json.loads(ack.get("data") or "{}") if isinstance(ack.get("data"), str) else ack.get("data")
    except ValueError:
        return False
    return (isinstance(data, dict) and data.get("status") in ("SUCCESS", "LATER")
            and isinstance(data.get("message"), str))


def hmac_b64(secret: str, message: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 200
    response: Any = None
    at: datetime | None = None


@dataclass
class CardInstance:
    out_track_id: str
    template_id: str
    card_data: dict[str, str]
    private_data: dict[str, dict[str, str]]
    spaces: list[str]
    callback_type: str = ""
    callback_route_key: str = ""
    updates: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def view(self, user_id: str) -> dict[str, str]:
        """What ``user_id`` sees: the shared data overlaid with their private data."""
        return {**self.card_data, **self.private_data.get(user_id, {})}


@dataclass
class CallbackResult:
    status: int
    body: Any
    reply: str | None = None  # events: the decrypted answer ("success")


class DingTalkSandbox:
    TOKEN_TTL = 7200
    CARD_ANSWER_WINDOW = 2.0
    CUSTOM_ROBOT_PER_MINUTE = 20
    CUSTOM_ROBOT_BLOCK = timedelta(minutes=10)

    def __init__(self, *, app_key: str = "dingsandboxappkey", app_secret: str = "sandbox-app-secret-0123456789",
                 corp_id: str = "dingsandboxcorp", token: str = "sandboxtoken",
                 aes_key: str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", robot_code: str = "",
                 agent_id: int = 3000001, card_template_id: str = "sandbox.lead.schema",
                 card_callback_secret: str = "", users: Iterable[str] = (), clock: Clock | None = None,
                 leadbot_url: str = "", host: str = "127.0.0.1", port: int = 0,
                 work_notice_daily_cap: int = 500, robot_per_user_per_minute: int = 20) -> None:
        self.app_key, self.app_secret, self.corp_id = app_key, app_secret, corp_id
        self.token, self.aes_key = token, aes_key
        self.robot_code = robot_code or app_key
        self.agent_id = agent_id
        self.card_template_id = card_template_id
        self.card_callback_secret = card_callback_secret
        self.users: set[str] = set(users)
        self.clock = clock or SystemClock()
        self.leadbot_url = leadbot_url.rstrip("/")
        self.host, self.port = host, port
        self.work_notice_daily_cap = work_notice_daily_cap
        self.robot_per_user_per_minute = robot_per_user_per_minute

        self.calls: list[Call] = []
        self.tokens: dict[str, datetime] = {}
        self._current_token: dict[str, str] = {}
        self.work_notices: list[dict[str, Any]] = []
        self.work_tasks: dict[int, dict[str, Any]] = {}
        self._work_seen: dict[tuple[str, str], set[str]] = defaultdict(set)  # (user, day) -> content hashes
        self._work_count: dict[tuple[str, str], int] = defaultdict(int)
        self.robot_messages: list[dict[str, Any]] = []
        self._robot_recent: dict[str, deque[datetime]] = defaultdict(deque)
        self.flow_controlled: set[str] = set()
        self.group_messages: list[dict[str, Any]] = []
        self.custom_robots: dict[str, str] = {}  # access_token -> secret
        self._custom_sent: dict[str, deque[datetime]] = defaultdict(deque)
        self._custom_blocked: dict[str, datetime] = {}
        self.sessions: dict[str, tuple[str, datetime]] = {}  # session -> (conversation, expiry)
        self.session_replies: list[dict[str, Any]] = []
        self.cards: dict[str, CardInstance] = {}
        # A card callback's answer counts only inside DingTalk's 2 s (dt/event-callback-card;
        # conformance D4): measured on the real round trip plus ``callback_latency``, so a test can
        # make leadbot "slow" without sleeping. Switch off with enforce_answer_window = False.
        self.enforce_answer_window = True
        # D11 size limits on card data (createAndDeliver, the PUT update, a callback's answer);
        # switch off with enforce_param_limits = False. Answers refused for size land in
        # refused_answers (the card stays as it was, as on DingTalk).
        self.enforce_param_limits = True
        self.refused_answers: list[dict[str, Any]] = []
        self.callback_latency = 0.0
        self.late_answers: list[dict[str, Any]] = []
        self.crm_records: dict[str, dict[str, Any]] = {}  # instance id -> record (see seed_crm_customer)
        self.card_callbacks: dict[str, tuple[str, str]] = {}  # route key -> (url, apiSecret)
        self.fail_next: list[tuple[str, int, Any]] = []  # (path, status, body) injected answers
        self.session_delay = 0.0  # seconds a sendBySession answer takes (a slow webhook)
        self._last_robot_ms = 0
        self.faults: dict[str, int | None] = {}  # FAULTS name -> calls left (None: until cleared)
        self._robot_uuids: dict[tuple[str, str], datetime] = {}  # (robot, msgUuid) -> first post
        self._task_seq = 0
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tickets: set[str] = set()
        self._stream_ws: web.WebSocketResponse | None = None
        self._stream_waiting: dict[str, asyncio.Future[Any]] = {}
        self.stream_connected = asyncio.Event()
        self.stream_acks: list[dict[str, Any]] = []
        self.invalid_acks: list[dict[str, Any]] = []  # EVENT acks DingTalk would not take (D8)
        self._frame_types: dict[str, str] = {}
        # The directory (add_department / add_member); dept 1 is the company itself.
        self.departments: dict[int, dict[str, Any]] = {1: {"dept_id": 1, "name": "沙箱科技", "order": 0}}
        self.members: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------------ lifecycle

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def dingtalk_settings(self, **overrides: Any) -> dict[str, Any]:
        """The [dingtalk] section that points leadbot at this sandbox."""
        section = {"app_key": self.app_key, "app_secret": self.app_secret, "corp_id": self.corp_id,
                   "token": self.token, "aes_key": self.aes_key, "robot_code": self.robot_code,
                   "agent_id": self.agent_id, "card_template_id": self.card_template_id,
                   "card_callback_secret": self.card_callback_secret,
                   "api_base": self.base, "oapi_base": self.base}
        section.update(overrides)
        return section

    def _app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_post("/v1.0/oauth2/accessToken", self._v1_token)
        r.add_get("/gettoken", self._oapi_token)
        r.add_post("/topapi/message/corpconversation/asyncsend_v2", self._asyncsend_v2)
        r.add_post("/topapi/message/corpconversation/getsendresult", self._getsendresult)
        r.add_post("/v1.0/robot/oToMessages/batchSend", self._batch_send)
        r.add_post("/v1.0/robot/groupMessages/send", self._group_send)
        r.add_post("/v1.0/card/instances/createAndDeliver", self._create_and_deliver)
        r.add_post("/v1.0/card/instances/deliver", self._create_and_deliver)
        r.add_put("/v1.0/card/instances", self._update_card)
        r.add_post("/v1.0/card/callbacks/register", self._register_card_callback)
        r.add_post("/robot/send", self._custom_robot)
        r.add_post("/robot/sendBySession", self._send_by_session)
        r.add_post("/v1.0/crm/personalCustomers/batchQuery", self._crm_batch_query)
        r.add_post("/topapi/crm/objectdata/contact/list", self._crm_contact_list)
        r.add_post("/v1.0/gateway/connections/open", self._stream_open)
        r.add_get("/connect", self._stream_connect)
        r.add_post("/topapi/v2/department/get", self._department_get)
        r.add_post("/topapi/v2/department/listsub", self._department_listsub)
        r.add_post("/topapi/v2/user/list", self._user_list)
        return app

    async def start(self) -> "DingTalkSandbox":
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]  # the port the OS picked
        return self

    async def stop(self) -> None:
        for fut in self._stream_waiting.values():
            fut.cancel()
        if self._stream_ws is not None:
            await self._stream_ws.close()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> "DingTalkSandbox":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # -------------------------------------------------------------------------- helpers

    def _now(self) -> datetime:
        return self.clock.now()

    def _now_ms(self) -> int:
        return int(self._now().timestamp() * 1000)

    def _day(self) -> str:
        return self._now().astimezone(SHANGHAI).date().isoformat()

    async def _record(self, request: web.Request) -> Call:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode(errors="replace")}
        call = Call(request.method, request.path, dict(request.query), body, at=self._now())
        self.calls.append(call)
        return call

    def _answer(self, call: Call, body: Any, status: int = 200) -> web.Response:
        call.status, call.response = status, body
        return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    def set_fault(self, name: str, times: int | None = None) -> None:
        """Switches a documented refusal on (FAULTS): for the next ``times`` calls it applies
        to, or until clear_fault when None."""
        if name not in FAULTS:
            raise KeyError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        self.faults[name] = times
        if name == "robot_410100":
            # Every custom robot went over its 20 a minute: each is blocked for 10 minutes.
            until = self._now() + self.CUSTOM_ROBOT_BLOCK
            for token in self.custom_robots:
                self._custom_blocked[token] = until

    def clear_fault(self, name: str) -> None:
        self.faults.pop(name, None)
        if name == "robot_410100":
            self._custom_blocked.clear()

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

    def _fault_answer(self, call: Call) -> web.Response | None:
        path = call.path
        if self._take_fault("punish"):
            return self._answer(call, dict(PUNISH_BODY))
        if path.startswith("/v1.0/") and self._take_fault("qpm_403"):
            return self._answer(call, {"code": "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi",
                                       "message": "app key and api qpm limit", "requestid": uuid.uuid4().hex}, 403)
        if path.startswith("/topapi/"):
            for code in (90001, 90003, 90004):
                if self._take_fault(f"oapi_{code}"):
                    return self._answer(call, {"errcode": code, "errmsg": "当前企业/应用的调用被暂时禁止",
                                               "request_id": _rand(12)})
        return None

    def _injected(self, call: Call) -> web.Response | None:
        for i, (path, status, body) in enumerate(self.fail_next):
            if path == call.path:
                del self.fail_next[i]
                return self._answer(call, body, status)
        return self._fault_answer(call)

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def _token_ok(self, token: str | None) -> bool:
        expires = self.tokens.get(token or "")
        return expires is not None and self._now() < expires

    def _v1_auth(self, request: web.Request, call: Call) -> web.Response | None:
        if self._token_ok(request.headers.get("x-acs-dingtalk-access-token")):
            return None
        return self._answer(call, {"code": "InvalidAuthentication", "message": "不合法的access_token",
                                   "requestid": uuid.uuid4().hex}, 401)

    def _oapi_auth(self, request: web.Request, call: Call) -> web.Response | None:
        if self._token_ok(request.query.get("access_token")):
            return None
        return self._answer(call, {"errcode": 88, "sub_code": "40014", "sub_msg": "不合法的access_token",
                                   "errmsg": "ding talk error[subcode=40014,submsg=不合法的access_token]",
                                   "request_id": uuid.uuid4().hex})

    def expire_tokens(self) -> None:
        """Every issued token stops working now (as if two hours had passed)."""
        for token in self.tokens:
            self.tokens[token] = self._now() - timedelta(seconds=1)

    def _issue(self, kind: str) -> tuple[str, int]:
        # Asking again while a token is valid returns the same token with a renewed life.
        token = self._current_token.get(kind)
        if not token or not self._token_ok(token):
            token = f"{kind}-{_rand(24)}"
            self._current_token[kind] = token
        self.tokens[token] = self._now() + timedelta(seconds=self.TOKEN_TTL)
        return token, self.TOKEN_TTL

    # ---------------------------------------------------------------------------- tokens

    async def _v1_token(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        body = call.body if isinstance(call.body, dict) else {}
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return self._answer(call, {"code": "invalidClientIdOrSecret", "message": "无效的clientId或者clientSecret",
                                       "requestid": uuid.uuid4().hex}, 400)
        token, ttl = self._issue("v1")
        return self._answer(call, {"accessToken": token, "expireIn": ttl})

    async def _oapi_token(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        if request.query.get("appkey") != self.app_key or request.query.get("appsecret") != self.app_secret:
            return self._answer(call, {"errcode": 40096, "errmsg": "不合法的appKey或appSecret"})
        token, ttl = self._issue("oapi")
        return self._answer(call, {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": ttl})

    # ---------------------------------------------------------------------- work notices

    async def _asyncsend_v2(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        denied = self._oapi_auth(request, call) or self._injected(call)
        if denied:
            return denied
        body = call.body if isinstance(call.body, dict) else {}
        msg = body.get("msg")
        if isinstance(msg, str):
            try:
                msg = json.loads(msg)
            except ValueError:
                msg = None
        users = [u for u in str(body.get("userid_list") or "").split(",") if u]
        # Sandbox codes for parameter errors (DingTalk answers them with one "invalid param").
        if str(body.get("agent_id")) != str(self.agent_id):
            return self._answer(call, {"errcode": 400002, "errmsg": "agent_id 不合法"})
        if not isinstance(msg, dict) or msg.get("msgtype") not in WORK_MSG_TYPES or msg["msgtype"] not in msg:
            return self._answer(call, {"errcode": 400002, "errmsg": "msg 不合法"})
        if len(json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode()) > 2048:
            return self._answer(call, {"errcode": 400002, "errmsg": "msg 超过2048字节"})
        if not users and not body.get("to_all_user") and not body.get("dept_id_list"):
            return self._answer(call, {"errcode": 1430000, "errmsg": "接受者为空"})
        if len(users) > 100:
            return self._answer(call, {"errcode": 400002, "errmsg": "userid_list 超过100"})
        self._task_seq += 1
        task_id = 100000 + self._task_seq
        content_hash = hashlib.sha256(json.dumps(msg, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        day = self._day()
        result: dict[str, Any] = {"invalid_user_id_list": [], "forbidden_user_id_list": [], "failed_user_id_list": [],
                                  "read_user_id_list": [], "unread_user_id_list": [], "forbidden_list": []}
        invalid_fault = self._take_fault("work_notice_invalid")
        over_fault = self._take_fault("work_notice_over_limit")
        for user in users:
            if (self.users and user not in self.users) or invalid_fault:
                result["invalid_user_id_list"].append(user)
            elif self._work_count[(user, day)] >= self.work_notice_daily_cap or over_fault:
                result["forbidden_user_id_list"].append(user)
                result["forbidden_list"].append({"code": "143105", "count": self._work_count[(user, day)], "userid": user})
            elif content_hash in self._work_seen[(user, day)]:
                # Same content to the same user once a day: accepted, silently not delivered.
                result["forbidden_user_id_list"].append(user)
                result["forbidden_list"].append({"code": "143106", "count": 1, "userid": user})
            else:
                self._work_seen[(user, day)].add(content_hash)
                self._work_count[(user, day)] += 1
                result["unread_user_id_list"].append(user)
                self.work_notices.append({"user": user, "msg": msg, "task_id": task_id, "at": self._now()})
        self.work_tasks[task_id] = result
        return self._answer(call, {"errcode": 0, "errmsg": "ok", "task_id": task_id, "request_id": _rand(12)})

    async def _getsendresult(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        denied = self._oapi_auth(request, call)
        if denied:
            return denied
        body = call.body if isinstance(call.body, dict) else {}
        try:
            result = self.work_tasks.get(int(body.get("task_id")))
        except (TypeError, ValueError):
            result = None
        if result is None:
            return self._answer(call, {"errcode": 400002, "errmsg": "task_id 不存在"})  # sandbox code
        return self._answer(call, {"errcode": 0, "errmsg": "ok", "send_result": result})

    # ------------------------------------------------------------------------ directory

    def add_department(self, dept_id: int, name: str, *, parent_id: int = 1, order: int = 0) -> dict[str, Any]:
        dept = {"dept_id": int(dept_id), "name": name, "parent_id": int(parent_id), "order": order,
                "create_dept_group": False, "auto_add_user": False}
        self.departments[int(dept_id)] = dept
        return dept

    def add_member(self, userid: str, name: str, dept_ids: Iterable[int] = (1,), *, mobile: str = "",
                   leader_in: Iterable[int] = (), active: bool = True, title: str = "",
                   access_limited: bool = False) -> dict[str, Any]:
        """A member of the directory (v2/user/list); also a valid message recipient. DingTalk has
        no "left" state: a person who leaves is deleted (remove_member)."""
        member = {"userid": userid, "unionid": "u" + hashlib.sha1(userid.encode()).hexdigest()[:20], "name": name,
                  "dept_id_list": [int(d) for d in dept_ids], "leader_in": {int(d) for d in leader_in},
                  "active": active, "title": title, "mobile": mobile, "access_limited": access_limited}
        self.members[userid] = member
        self.users.add(userid)
        return member

    def remove_member(self, userid: str) -> None:
        self.members.pop(userid, None)
        self.users.discard(userid)

    def _directory_call(self, call: Call) -> tuple[dict[str, Any], int | None]:
        body = call.body if isinstance(call.body, dict) else {}
        try:
            dept_id = int(body.get("dept_id"))
        except (TypeError, ValueError):
            return body, None
        return body, dept_id if dept_id in self.departments else None

    def _no_dept(self, call: Call) -> web.Response:
        return self._answer(call, {"errcode": 60003, "errmsg": "部门不存在", "request_id": _rand(12)})

    async def _department_get(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        denied = self._oapi_auth(request, call) or self._injected(call)
        if denied:
            return denied
        _, dept_id = self._directory_call(call)
        if dept_id is None:
            return self._no_dept(call)
        dept = {k: v for k, v in self.departments[dept_id].items() if k != "order"}
        return self._answer(call, {"errcode": 0, "errmsg": "ok", "result": dept, "request_id": _rand(12)})

    async def _department_listsub(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        denied = self._oapi_auth(request, call) or self._injected(call)
        if denied:
            return denied
        _, dept_id = self._directory_call(call)
        if dept_id is None:
            return self._no_dept(call)
        children = [d for d in self.departments.values() if d.get("parent_id") == dept_id and d["dept_id"] != 1]
        children.sort(key=lambda d: (d["order"], d["dept_id"]))
        result = [{k: v for k, v in d.items() if k != "order"} for d in children]
        return self._answer(call, {"errcode": 0, "errmsg": "ok", "result": result, "request_id": _rand(12)})

    async def _user_list(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        denied = self._oapi_auth(request, call) or self._injected(call)
        if denied:
            return denied
        body, dept_id = self._directory_call(call)
        try:
            cursor, size = int(body.get("cursor", -1)), int(body.get("size", 0))
        except (TypeError, ValueError):
            cursor, size = -1, 0
        if cursor < 0 or not 1 <= size <= 100:
            return self._answer(call, {"errcode": 400002, "errmsg": "无效的参数", "request_id": _rand(12)})
        if dept_id is None:
            return self._no_dept(call)
        # conformance D10 (suspected): staff with restricted visibility are listed only when
        # the caller asks with contain_access_limit.
        members = [m for m in self.members.values() if dept_id in m["dept_id_list"]
                   and (not m["access_limited"] or body.get("contain_access_limit") is True)]
        page = members[cursor:cursor + size]
        listed = []
        for m in page:
            user = {k: v for k, v in m.items() if k not in ("leader_in", "mobile", "access_limited")}
            user["leader"] = dept_id in m["leader_in"]
            if m["mobile"]:
                user.update(mobile=m["mobile"], state_code="86")
            listed.append(user)
        result: dict[str, Any] = {"has_more": cursor + size < len(members), "list": listed}
        if result["has_more"]:
            result["next_cursor"] = cursor + size
        return self._answer(call, {"errcode": 0, "errmsg": "ok", "result": result, "request_id": _rand(12)})

    def notices_for(self, user: str) -> list[dict[str, Any]]:
        return [n for n in self.work_notices if n["user"] == user]

    # -------------------------------------------------------------------- robot OpenAPI

    def _robot_param(self, body: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
        if body.get("robotCode") != self.robot_code:
            return None, "robotCode 不存在"
        key = body.get("msgKey")
        if key not in ROBOT_MSG_KEYS:
            return None, "msgKey 不合法"
        try:
            param = json.loads(body.get("msgParam") or "")
        except (TypeError, ValueError):
            return None, "msgParam 不是JSON"
        if not isinstance(param, dict) or any(k not in param for k in ROBOT_MSG_KEYS[key][:2]):
            return None, "msgParam 缺少字段"
        return param, ""

    async def _batch_send(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        denied = self._v1_auth(request, call) or self._injected(call)
        if denied:
            return denied
        body = call.body if isinstance(call.body, dict) else {}
        param, problem = self._robot_param(body)
        users = body.get("userIds")
        if not problem and (not isinstance(users, list) or not users or len(users) > 20):
            problem = "userIds 为1到20个"
        if problem:  # sandbox code: DingTalk answers parameter errors with 400 + a code
            return self._answer(call, {"code": "invalidParameter", "message": problem,
                                       "requestid": uuid.uuid4().hex}, 400)
        invalid: list[str] = []
        flow: list[str] = []
        now = self._now()
        invalid_fault = self._take_fault("batch_invalid")
        flow_fault = self._take_fault("batch_flow_control")
        for user in users:
            recent = self._robot_recent[user]
            while recent and (now - recent[0]).total_seconds() >= 60:
                recent.popleft()
            if (self.users and user not in self.users) or invalid_fault:
                invalid.append(user)
            elif user in self.flow_controlled or flow_fault or len(recent) >= self.robot_per_user_per_minute:
                flow.append(user)
            else:
                recent.append(now)
                self.robot_messages.append({"user": user, "msgKey": body["msgKey"], "param": param, "at": now})
        return self._answer(call, {"processQueryKey": _rand(20), "invalidStaffIdList": invalid,
                                   "flowControlledStaffIdList": flow})

    async def _group_send(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        denied = self._v1_auth(request, call) or self._injected(call)
        if denied:
            return denied
        body = call.body if isinstance(call.body, dict) else {}
        param, problem = self._robot_param(body)
        if not problem and not body.get("openConversationId"):
            problem = "openConversationId 为空"
        if problem:
            return self._answer(call, {"code": "invalidParameter", "message": problem,
                                       "requestid": uuid.uuid4().hex}, 400)
        self.group_messages.append({"conversation": body["openConversationId"], "via": "robot_api",
                                    "msgKey": body["msgKey"], "param": param, "at": self._now()})
        return self._answer(call, {"processQueryKey": _rand(20)})

    # ------------------------------------------------------------------ custom robots

    def add_custom_robot(self, secret: str = "") -> tuple[str, str]:
        """A custom group robot: returns (webhook URL, SEC… secret)."""
        token = _rand(32).lower()
        secret = secret or "SEC" + _rand(40)
        self.custom_robots[token] = secret
        return f"{self.base}/robot/send?access_token={token}", secret

    async def _custom_robot(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        token = request.query.get("access_token", "")
        secret = self.custom_robots.get(token)
        if secret is None:
            return self._answer(call, {"errcode": 300005, "errmsg": "token is not exist"})
        ts = request.query.get("timestamp", "")
        sign = request.query.get("sign", "")
        if secret:
            expected = hmac_b64(secret, f"{ts}\n{secret}")
            fresh = ts.isdigit() and abs(self._now_ms() - int(ts)) <= 3600 * 1000
            if not fresh or not hmac.compare_digest(expected, sign):
                return self._answer(call, {"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"})
        flood = self._fault_answer(call)
        if flood is not None:
            return flood
        now = self._now()
        body = call.body if isinstance(call.body, dict) else {}
        msg_uuid = str(body.get("msgUuid") or "")
        for key, at in list(self._robot_uuids.items()):
            if now - at > MSG_UUID_MEMORY:
                del self._robot_uuids[key]
        if msg_uuid and (token, msg_uuid) in self._robot_uuids:
            # conformance D5: a msgUuid this robot already posted is not posted again.
            return self._answer(call, {"errcode": 0, "errmsg": "ok"})
        blocked = self._custom_blocked.get(token)
        sent = self._custom_sent[token]
        while sent and (now - sent[0]).total_seconds() >= 60:
            sent.popleft()
        # conformance D1: more than 20 a minute answers 410100 and blocks the robot for 10
        # minutes, for every sender; while blocked every send answers 410100.
        if (blocked and now < blocked) or len(sent) >= self.CUSTOM_ROBOT_PER_MINUTE:
            if not (blocked and now < blocked):
                self._custom_blocked[token] = now + self.CUSTOM_ROBOT_BLOCK
            return self._answer(call, {"errcode": ROBOT_THROTTLED, "errmsg": "发送速度太快而限流"})
        if self._take_fault("robot_660026"):
            return self._answer(call, {"errcode": ROBOT_SEND_FAILED, "errmsg": "发送失败，请重试"})
        if body.get("msgtype") not in {"text", "link", "markdown", "actionCard", "feedCard"}:
            return self._answer(call, {"errcode": 40035, "errmsg": "缺少参数 json"})
        sent.append(now)
        if msg_uuid:
            self._robot_uuids[(token, msg_uuid)] = now
        self.group_messages.append({"conversation": f"custom:{token}", "via": "custom_robot", "msg": body, "at": now})
        if self._take_fault("robot_lost_answer"):
            # Posted, but the answer never reaches the sender (a gateway error on the way back).
            return self._answer(call, {"message": "bad gateway"}, 502)
        return self._answer(call, {"errcode": 0, "errmsg": "ok"})

    async def _send_by_session(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        if self.session_delay:
            await asyncio.sleep(self.session_delay)
        session = self.sessions.get(request.query.get("session", ""))
        if session is None or self._now() >= session[1]:
            return self._answer(call, {"errcode": 300005, "errmsg": "token is not exist"})
        body = call.body if isinstance(call.body, dict) else {}
        self.session_replies.append({"conversation": session[0], "msg": body, "at": self._now()})
        return self._answer(call, {"errcode": 0, "errmsg": "ok"})

    # ---------------------------------------------------------------------------- CRM

    def seed_crm_customer(self, data_id: str = "", *, object_type: str = "crm_customer_personal", name: str = "",
                          phone: str = "", company: str = "", email: str = "", creator: str = "",
                          owners: Iterable[str] | None = None, participants: Iterable[str] = (),
                          data: Mapping[str, Any] | None = None, unionid: str = "") -> str:
        """A record of DingTalk's official CRM, as its form stores it: customers (企业客户
        ``crm_customer``: the name is the company's; 个人客户 ``crm_customer_personal``) and
        contacts (``crm_contact``). Phones are stored like the phone widget does ({value,
        extendValue}). Returns the instance id, to send with send_crm_event."""
        data_id = data_id or str(uuid.uuid4())
        fields: dict[str, Any] = {}
        prefix = "contact" if object_type == "crm_contact" else "customer"
        if name or (object_type == "crm_customer" and company):
            fields[f"{prefix}_name"] = name or company
        if phone:
            fields[f"{prefix}_phone"] = {"value": phone, "extendValue": json.dumps(
                {"mode": "phone", "countryKey": "CN", "countryCode": "+86", "areaNumber": ""})}
        if company and object_type != "crm_customer":
            fields[f"{prefix}_company_name"] = company
        if email:
            fields[f"{prefix}_email"] = email
        fields.update(data or {})
        owner_ids = list(owners) if owners is not None else ([creator] if creator else [])
        now = self._now().astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        previous = self.crm_records.get(data_id)
        self.crm_records[data_id] = {
            "instanceId": data_id, "objectType": object_type, "creatorUserId": creator,
            "creatorNick": creator, "data": fields,
            "extendData": {"contactUnionId": unionid} if unionid else {},
            "permission": {"ownerStaffIds": owner_ids, "participantStaffIds": list(participants)},
            "appUuid": "sandbox-crm", "formCode": f"PROC-{object_type}", "procOutResult": "agree",
            "procInstStatus": "COMPLETED", "gmtCreate": previous["gmtCreate"] if previous else now,
            "gmtModified": now}
        return data_id

    def delete_crm_record(self, data_id: str) -> None:
        self.crm_records.pop(data_id, None)

    async def _crm_batch_query(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        denied = self._v1_auth(request, call) or self._injected(call)
        if denied:
            return denied
        relation = request.query.get("relationType") or "crm_customer"
        if relation not in ("crm_customer", "crm_customer_personal"):
            return self._answer(call, {"code": "relationType.not.exists", "message": "relationType not exists",
                                       "requestid": uuid.uuid4().hex}, 400)
        ids = call.body if isinstance(call.body, list) else None
        if not ids or len(ids) > 200 or not all(isinstance(i, str) for i in ids):  # sandbox code
            return self._answer(call, {"code": "invalidParameter", "message": "body must list 1 to 200 instance ids",
                                       "requestid": uuid.uuid4().hex}, 400)
        found = [self.crm_records[i] for i in ids if i in self.crm_records
                 and self.crm_records[i]["objectType"] == relation]
        return self._answer(call, {"result": json.loads(json.dumps(found))})

    async def _crm_contact_list(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        denied = self._oapi_auth(request, call) or self._injected(call)
        if denied:
            return denied
        body = call.body if isinstance(call.body, dict) else {}
        ids = [i.strip() for i in str(body.get("data_id_list") or "").split(",") if i.strip()]
        if not ids:
            return self._answer(call, {"errcode": 40035, "errmsg": "缺少参数 data_id_list"})
        if len(ids) > 200:  # sandbox code
            return self._answer(call, {"errcode": 40035, "errmsg": "data_id_list 最多 200 个"})
        out = []
        for i in ids:
            r = self.crm_records.get(i)
            if r is None or r["objectType"] != "crm_contact":
                continue
            out.append({"instance_id": r["instanceId"], "object_type": r["objectType"],
                        "creator_userid": r["creatorUserId"], "creator_nick": r["creatorNick"],
                        "data": json.dumps(r["data"], ensure_ascii=False),
                        "extend_data": json.dumps(r["extendData"], ensure_ascii=False),
                        "gmt_create": r["gmtCreate"], "gmt_modified": r["gmtModified"],
                        "permission": {"owner_userid_list": r["permission"]["ownerStaffIds"],
                                       "participant_userid_list": r["permission"]["participantStaffIds"]}})
        return self._answer(call, {"errcode": 0, "errmsg": "ok", "result_list": out,
                                   "request_id": _rand(12)})

    # -------------------------------------------------------------------------- cards

    @staticmethod
    def _param_map(value: Any) -> dict[str, str] | None:
        params = value.get("cardParamMap") if isinstance(value, dict) else None
        if params is None:
            return {}
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return None
        return dict(params)

    def _size_problem(self, card_data: Mapping[str, str] | None, private: Any) -> str:
        """The D11 limit a card body breaks, or "" (always "" with enforce_param_limits off)."""
        if not self.enforce_param_limits:
            return ""
        entries = private if isinstance(private, dict) else {}
        maps = [card_data or {}] + [self._param_map(v) or {} for v in entries.values()]
        for params in maps:
            for key, value in params.items():
                if len(key.encode("utf-8", "surrogatepass")) > PARAM_KEY_MAX_BYTES:
                    return f"cardParamMap 的 key 超过 {PARAM_KEY_MAX_BYTES} 字节: {key[:20]}"
                if len(value.encode("utf-8", "surrogatepass")) > PARAM_VALUE_MAX_BYTES:
                    return f"cardParamMap 的值超过 1KB: {key[:20]}"
        for uid, entry in entries.items():
            sent = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
            if len(sent) > PRIVATE_DATA_MAX_BYTES:
                return f"privateData 中用户 {str(uid)[:40]} 的数据超过 1KB ({len(sent)} 字节)"
        return ""

    async def _create_and_deliver(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        denied = self._v1_auth(request, call) or self._injected(call)
        if denied:
            return denied
        body = call.body if isinstance(call.body, dict) else {}
        out_track_id = str(body.get("outTrackId") or "")
        space_id = str(body.get("openSpaceId") or "")
        card_data = self._param_map(body.get("cardData"))
        private = body.get("privateData") or {}
        private_maps = {uid: self._param_map(v) for uid, v in private.items()} if isinstance(private, dict) else None
        problem = ""
        if (not body.get("cardTemplateId") and not request.path.endswith("/deliver")) or not out_track_id:
            problem = "cardTemplateId 和 outTrackId 必填"
        elif not space_id.startswith("dtv1.card//"):
            problem = "openSpaceId 不合法"
        elif card_data is None or private_maps is None or any(v is None for v in private_maps.values()):
            problem = "cardParamMap 的值必须是字符串"
        elif body.get("callbackType") == "HTTP" and not body.get("callbackRouteKey"):
            problem = "HTTP 回调需要 callbackRouteKey"
        else:
            problem = self._size_problem(card_data, private)
        if problem:  # sandbox code
            return self._answer(call, {"code": "invalidParameter", "message": problem,
                                       "requestid": uuid.uuid4().hex}, 400)
        spaces = [s for s in space_id[len("dtv1.card//"):].split(";") if s]
        card = self.cards.get(out_track_id)
        if card is not None and request.path.endswith("/createAndDeliver"):
            # conformance D9 (suspected): the strict reading, an existing outTrackId is refused.
            return self._answer(call, {"code": "param.cardAlreadyExist", "message": "卡片已存在",
                                       "requestid": uuid.uuid4().hex}, 400)
        if card is None and request.path.endswith("/deliver"):
            return self._answer(call, {"code": "cardInstanceNotExist", "message": "卡片实例不存在",  # sandbox code
                                       "requestid": uuid.uuid4().hex}, 400)
        if card is None:
            card = CardInstance(out_track_id, str(body["cardTemplateId"]), card_data or {},
                                {uid: v or {} for uid, v in private_maps.items()}, [],
                                str(body.get("callbackType") or ""), str(body.get("callbackRouteKey") or ""))
            self.cards[out_track_id] = card
        results = []
        for space in spaces:
            kind, _, sid = space.partition(".")
            ok, error = True, ""
            if kind not in ("IM_ROBOT", "IM_GROUP") or not sid:
                ok, error = False, "unsupported space"
            elif kind == "IM_ROBOT" and self.users and sid not in self.users:
                ok, error = False, "user not exist"
            if ok and space not in card.spaces:
                card.spaces.append(space)
            entry = {"spaceType": kind, "spaceId": sid, "success": ok}
            if ok:
                entry["carrierId"] = hashlib.sha1(f"{out_track_id}{space}".encode()).hexdigest()[:16]
            else:
                entry["errorMsg"] = error
            results.append(entry)
        return self._answer(call, {"success": True, "result": {"outTrackId": out_track_id, "deliverResults": results}})

    def _apply(self, card: CardInstance, card_data: dict[str, str] | None,
               private: Mapping[str, dict[str, str]] | None, options: Mapping[str, Any]) -> None:
        if card_data is not None:
            if options.get("updateCardDataByKey"):
                card.card_data.update(card_data)
            else:
                card.card_data = dict(card_data)
        for uid, values in (private or {}).items():
            if options.get("updatePrivateDataByKey"):
                card.private_data.setdefault(uid, {}).update(values)
            else:
                card.private_data[uid] = dict(values)
        card.updates += 1
        card.history.append({"card_data": dict(card.card_data),
                             "private_data": {k: dict(v) for k, v in card.private_data.items()}})

    async def _update_card(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        denied = self._v1_auth(request, call) or self._injected(call)
        if denied:
            return denied
        body = call.body if isinstance(call.body, dict) else {}
        card = self.cards.get(str(body.get("outTrackId") or ""))
        if card is None:  # sandbox code
            return self._answer(call, {"code": "cardInstanceNotExist", "message": "卡片实例不存在",
                                       "requestid": uuid.uuid4().hex}, 400)
        card_data = self._param_map(body["cardData"]) if "cardData" in body else None
        private = body.get("privateData") or {}
        maps = {uid: self._param_map(v) for uid, v in private.items()} if isinstance(private, dict) else {"": None}
        if ("cardData" in body and card_data is None) or any(v is None for v in maps.values()):
            return self._answer(call, {"code": "invalidParameter", "message": "cardParamMap 的值必须是字符串",
                                       "requestid": uuid.uuid4().hex}, 400)
        problem = self._size_problem(card_data, private)
        if problem:  # sandbox code, DingTalk's error shape
            return self._answer(call, {"code": "invalidParameter", "message": problem,
                                       "requestid": uuid.uuid4().hex}, 400)
        self._apply(card, card_data, maps, body.get("cardUpdateOptions") or {})  # type: ignore[arg-type]
        return self._answer(call, {"success": True, "result": True})

    async def _register_card_callback(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        denied = self._v1_auth(request, call)
        if denied:
            return denied
        body = call.body if isinstance(call.body, dict) else {}
        key, url = str(body.get("callbackRouteKey") or ""), str(body.get("callbackUrl") or "")
        if not key or not url:
            return self._answer(call, {"code": "invalidParameter", "message": "callbackRouteKey 和 callbackUrl 必填",
                                       "requestid": uuid.uuid4().hex}, 400)
        if key in self.card_callbacks and not body.get("forceUpdate"):
            return self._answer(call, {"code": "callbackRouteKeyExists", "message": "已存在",  # sandbox code
                                       "requestid": uuid.uuid4().hex}, 400)
        self.card_callbacks[key] = (url, str(body.get("apiSecret") or ""))
        return self._answer(call, {"success": True, "result": {"callbackUrl": url, "apiSecret": body.get("apiSecret")}})

    # ============================================================ callbacks to leadbot

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._http

    async def _post(self, url: str, *, params: Mapping[str, str] | None = None, data: bytes,
                    headers: Mapping[str, str]) -> tuple[int, Any]:
        async with self._client().post(url, params=params, data=data, headers=dict(headers)) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text

    def _need_leadbot(self) -> str:
        if not self.leadbot_url:
            raise RuntimeError("set DingTalkSandbox.leadbot_url to send callbacks")
        return self.leadbot_url

    def encrypt_event(self, plaintext: str, *, receive_id: str | None = None, timestamp: str | None = None,
                      nonce: str | None = None) -> dict[str, str]:
        """{msg_signature, encrypt, timeStamp, nonce} as DingTalk builds them."""
        crypto = DingTalkCrypto(self.token, self.aes_key, receive_id or self.app_key)
        return crypto.encrypt_message(plaintext, nonce or _rand(16), timestamp or str(self._now_ms()))

    def decrypt_reply(self, reply: Mapping[str, Any], receive_id: str | None = None) -> str:
        crypto = DingTalkCrypto(self.token, self.aes_key, receive_id or self.app_key)
        return crypto.decrypt_message({"encrypt": reply["encrypt"]}, reply["msg_signature"],
                                      reply["timeStamp"], reply["nonce"])

    async def post_encrypted(self, plaintext: str, *, receive_id: str | None = None, timestamp: str | None = None,
                             spelling: str = "signature", tamper: bool = False) -> CallbackResult:
        """POSTs an encrypted event body to leadbot with the query in either spelling
        (``signature``/``timestamp`` or ``msg_signature``/``timeStamp``)."""
        rid = receive_id or self.app_key
        enc = self.encrypt_event(plaintext, receive_id=rid, timestamp=timestamp)
        sig = enc["msg_signature"]
        if tamper:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        if spelling == "msg_signature":
            query = {"msg_signature": sig, "timeStamp": enc["timeStamp"], "nonce": enc["nonce"]}
        else:
            query = {"signature": sig, "timestamp": enc["timeStamp"], "nonce": enc["nonce"]}
        status, body = await self._post(self._need_leadbot() + "/callbacks/dingtalk/events", params=query,
                                        data=json.dumps({"encrypt": enc["encrypt"]}).encode(),
                                        headers={"Content-Type": "application/json"})
        reply = None
        if status == 200 and isinstance(body, dict) and "encrypt" in body:
            reply = self.decrypt_reply(body, rid)
        return CallbackResult(status, body, reply)

    def event_plaintext(self, event_type: str, fields: Mapping[str, Any] | None = None, *,
                        event_id: str | None = None, event_time_ms: int | None = None) -> dict[str, Any]:
        plain: dict[str, Any] = {"EventType": event_type, "EventTime": event_time_ms or self._now_ms(),
                                 "CorpId": self.corp_id}
        if event_id != "":
            plain["eventId"] = event_id or uuid.uuid4().hex
        plain.update(fields or {})
        return plain

    async def send_event(self, event_type: str, fields: Mapping[str, Any] | None = None, *,
                         event_id: str | None = None, event_time_ms: int | None = None,
                         receive_id: str | None = None, spelling: str = "signature",
                         timestamp: str | None = None, tamper: bool = False) -> CallbackResult:
        """An HTTP event push (``event_id=""`` leaves eventId out, as legacy pushes do)."""
        plain = self.event_plaintext(event_type, fields, event_id=event_id, event_time_ms=event_time_ms)
        return await self.post_encrypted(json.dumps(plain, ensure_ascii=False), receive_id=receive_id,
                                         timestamp=timestamp, spelling=spelling, tamper=tamper)

    async def send_crm_event(self, change: str, object_type: str, data_id: str, **kw: Any) -> CallbackResult:
        """ding_paas_object_data_create|update|delete (ids only, as DingTalk sends them)."""
        fields = {"BizId": data_id, "ObjectType": object_type, "DataId": data_id, "DataType": "master"}
        return await self.send_event(f"ding_paas_object_data_{change}", fields, **kw)

    def robot_body(self, sender_staff_id: str, text: str, *, conversation_type: str = "1",
                   conversation_id: str | None = None, msg_id: str | None = None, sender_nick: str = "",
                   session_minutes: int = 90) -> dict[str, Any]:
        now = self._now_ms()
        conversation = conversation_id or ("cid" + hashlib.sha1(f"{sender_staff_id}".encode()).hexdigest()[:20])
        session = _rand(32)
        expires = now + session_minutes * 60 * 1000
        self.sessions[session] = (conversation, datetime.fromtimestamp(expires / 1000, tz=timezone.utc))
        return {
            "conversationId": conversation, "conversationType": conversation_type,
            "conversationTitle": "销售群" if conversation_type == "2" else "",
            "msgId": msg_id or f"msg{uuid.uuid4().hex}", "msgtype": "text", "text": {"content": " " + text},
            "createAt": now, "senderId": "$:LWCP_v1:$" + _rand(24), "senderNick": sender_nick or sender_staff_id,
            "senderStaffId": sender_staff_id, "senderCorpId": self.corp_id, "chatbotCorpId": self.corp_id,
            "chatbotUserId": "$:LWCP_v1:$" + _rand(24), "isAdmin": False, "isInAtList": True,
            "robotCode": self.robot_code, "sessionWebhook": f"{self.base}/robot/sendBySession?session={session}",
            "sessionWebhookExpiredTime": expires,
        }

    def _robot_ms(self) -> int:
        """DingTalk signs each robot message with the millisecond it sends it: two messages never
        share a (timestamp, sign) pair, even under a frozen test clock."""
        ms = max(self._now_ms(), self._last_robot_ms + 1)
        self._last_robot_ms = ms
        return ms

    async def post_robot(self, body: Mapping[str, Any], *, timestamp: str | None = None,
                         secret: str | None = None, sign: str | None = None) -> CallbackResult:
        ts = timestamp or str(self._robot_ms())
        key = secret if secret is not None else self.app_secret
        headers = {"Content-Type": "application/json", "timestamp": ts,
                   "sign": sign if sign is not None else hmac_b64(key, f"{ts}\n{key}")}
        status, resp = await self._post(self._need_leadbot() + "/callbacks/dingtalk/robot",
                                        data=json.dumps(body, ensure_ascii=False).encode(), headers=headers)
        return CallbackResult(status, resp)

    def robot_quota_body(self, sender_staff_id: str, **kw: Any) -> dict[str, Any]:
        """conformance D13 (dt/develop-stream-mode-push-server): with the organisation's call
        quota used up, DingTalk still delivers the robot message, without its text, with
        errCode 20001 and errMsg."""
        body = self.robot_body(sender_staff_id, "", **kw)
        body.pop("text", None)
        body.update(errCode=QUOTA_EXHAUSTED, errMsg="应用调用量已超过免费额度，请升级套餐")
        return body

    async def send_robot_text(self, sender_staff_id: str, text: str, **kw: Any) -> CallbackResult:
        """A user @-mentions the app robot in a group (conversation_type "2") or DMs it ("1")."""
        post_kw = {k: kw.pop(k) for k in ("timestamp", "secret", "sign") if k in kw}
        return await self.post_robot(self.robot_body(sender_staff_id, text, **kw), **post_kw)

    def card_tap_body(self, out_track_id: str, user_id: str, *, key: str | None = None,
                      action_id: str | None = None, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        p = dict(params or {})
        if key is not None:
            p.setdefault("key", key)
        action = action_id or (key.split(":", 1)[0] if key else "action")
        content = {"cardPrivateData": {"actionIds": [action], "params": p}}
        return {"type": "actionCallback", "outTrackId": out_track_id, "corpId": self.corp_id, "userId": user_id,
                "content": json.dumps(content, ensure_ascii=False),
                "extension": json.dumps({}), "spaceType": "im", "userIdType": 1}

    async def tap_card(self, out_track_id: str, user_id: str, *, key: str | None = None,
                       action_id: str | None = None, params: Mapping[str, Any] | None = None,
                       timestamp: str | None = None, secret: str | None = None,
                       sign: str | None = None) -> CallbackResult:
        """A user taps a button of a delivered card: the signed HTTP callback, and the answer
        applied to the card as DingTalk would show it."""
        card = self.cards.get(out_track_id)
        url = self._need_leadbot() + "/callbacks/dingtalk/card"
        api_secret = self.card_callback_secret or self.app_secret
        if card is not None and card.callback_route_key in self.card_callbacks:
            url, api_secret = self.card_callbacks[card.callback_route_key]
            api_secret = api_secret or self.app_secret
        ts = timestamp or str(self._now_ms())
        key_secret = secret if secret is not None else api_secret
        headers = {"Content-Type": "application/json", "x-ddpaas-signature-timestamp": ts,
                   "x-ddpaas-signature": sign if sign is not None else hmac_b64(key_secret, ts)}
        body = self.card_tap_body(out_track_id, user_id, key=key, action_id=action_id, params=params)
        started = time.monotonic()
        status, resp = await self._post(url, data=json.dumps(body, ensure_ascii=False).encode(), headers=headers)
        if status == 200 and isinstance(resp, dict) and card is not None:
            self._answer_in_time(card, user_id, resp, time.monotonic() - started)
        return CallbackResult(status, resp)

    def _answer_in_time(self, card: CardInstance, user_id: str, resp: Mapping[str, Any], elapsed: float) -> None:
        elapsed += self.callback_latency
        if self.enforce_answer_window and elapsed > self.CARD_ANSWER_WINDOW:
            if any(k in resp for k in ("cardData", "userPrivateData")):
                self.late_answers.append({"out_track_id": card.out_track_id, "user_id": user_id,
                                          "elapsed": elapsed})
            return  # too late: the card stays as it was until the update API changes it
        self.apply_callback_response(card, user_id, resp)

    def apply_callback_response(self, card: CardInstance, user_id: str, resp: Mapping[str, Any]) -> None:
        if not any(k in resp for k in ("cardData", "userPrivateData")):
            return
        card_data = self._param_map(resp["cardData"]) if "cardData" in resp else None
        problem = self._size_problem(card_data, {user_id: resp["userPrivateData"]}
                                     if isinstance(resp.get("userPrivateData"), dict) else None)
        if problem:
            self.refused_answers.append({"out_track_id": card.out_track_id, "user_id": user_id,
                                         "problem": problem})
            return
        private = ({user_id: self._param_map(resp["userPrivateData"]) or {}}
                   if "userPrivateData" in resp else None)
        self._apply(card, card_data, private, resp.get("cardUpdateOptions") or {})

    # ------------------------------------------------------------------------ Stream

    async def _stream_open(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        body = call.body if isinstance(call.body, dict) else {}
        if body.get("clientId") != self.app_key or body.get("clientSecret") != self.app_secret:
            return self._answer(call, {"code": "invalidClientIdOrSecret", "message": "无效的clientId或者clientSecret",
                                       "requestid": uuid.uuid4().hex}, 400)
        ticket = _rand(32)
        self._tickets.add(ticket)
        return self._answer(call, {"endpoint": f"ws://{self.host}:{self.port}/connect", "ticket": ticket})

    async def _stream_connect(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.json_response({"code": "invalidTicket"}, status=401)  # sandbox code
        self._tickets.discard(ticket)  # single use
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._stream_ws = ws
        self.stream_connected.set()
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    ack = json.loads(msg.data)
                except ValueError:
                    continue
                self.stream_acks.append(ack)
                message_id = str((ack.get("headers") or {}).get("messageId"))
                if self._frame_types.pop(message_id, "") == "EVENT" and not _event_ack_ok(ack):
                    # conformance D8: an event ack's data carries status and message; without
                    # them DingTalk counts the event unacknowledged (and pushes it again).
                    self.invalid_acks.append(ack)
                fut = self._stream_waiting.pop(message_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(ack)
        finally:
            if self._stream_ws is ws:
                self._stream_ws = None
                self.stream_connected.clear()
        return ws

    async def push_frame(self, frame: Mapping[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Sends one frame to the connected leadbot and returns its ack."""
        if self._stream_ws is None:
            raise RuntimeError("no Stream connection")
        message_id = str(frame["headers"]["messageId"])
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._stream_waiting[message_id] = fut
        self._frame_types[message_id] = str(frame.get("type") or "")
        await self._stream_ws.send_str(json.dumps(frame, ensure_ascii=False))
        return await asyncio.wait_for(fut, timeout)

    def stream_event_frame(self, event_type: str, data: Mapping[str, Any], *, event_id: str | None = None,
                           born_ms: int | None = None) -> dict[str, Any]:
        now = self._now_ms()
        return {"specVersion": "1.0", "type": "EVENT",
                "headers": {"appId": self.app_key, "connectionId": "conn-sandbox", "contentType": "application/json",
                            "messageId": uuid.uuid4().hex, "time": str(now), "topic": "*",
                            "eventType": event_type, "eventId": event_id or uuid.uuid4().hex,
                            "eventBornTime": str(born_ms or now), "eventCorpId": self.corp_id,
                            "eventUnifiedAppId": self.app_key},
                "data": json.dumps(dict(data), ensure_ascii=False)}

    def stream_callback_frame(self, topic: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return {"specVersion": "1.0", "type": "CALLBACK",
                "headers": {"appId": self.app_key, "connectionId": "conn-sandbox", "contentType": "application/json",
                            "messageId": uuid.uuid4().hex, "time": str(self._now_ms()), "topic": topic},
                "data": json.dumps(dict(data), ensure_ascii=False)}

    def stream_ping_frame(self) -> dict[str, Any]:
        return {"specVersion": "1.0", "type": "SYSTEM",
                "headers": {"contentType": "application/json", "messageId": uuid.uuid4().hex,
                            "time": str(self._now_ms()), "topic": "ping"},
                "data": json.dumps({"opaque": _rand(16)})}

    async def stream_robot_text(self, sender_staff_id: str, text: str, **kw: Any) -> dict[str, Any]:
        return await self.push_frame(self.stream_callback_frame(ROBOT_TOPIC, self.robot_body(sender_staff_id, text, **kw)))

    async def stream_tap_card(self, out_track_id: str, user_id: str, **kw: Any) -> dict[str, Any]:
        started = time.monotonic()
        ack = await self.push_frame(self.stream_callback_frame(CARD_TOPIC, self.card_tap_body(out_track_id, user_id, **kw)))
        elapsed = time.monotonic() - started
        card = self.cards.get(out_track_id)
        try:
            response = json.loads(ack.get("data") or "{}").get("response")
        except (ValueError, AttributeError):
            response = None
        if card is not None and isinstance(response, dict):
            self._answer_in_time(card, user_id, response, elapsed)
        return ack
