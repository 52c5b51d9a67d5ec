"""`leadbot demo`: leadbot, a simulated WeCom and a simulated DingTalk, and the sandbox page, in
one process on loopback, with no credentials and no network.

leadbot runs exactly as `leadbot serve` would (create_app, an embedded SQLite file, the real
callback, intake and action-page routes); only its api_base/oapi_base point at the simulated
platforms, and their callback URLs point back at leadbot. Every button on the sandbox page makes
the simulated platform send the real encrypted (or signed) callback, so what the page shows is
what production would do. The clock is a ManualClock that also follows the wall clock, so the
page can fast-forward it to show the SLA ladder climbing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from leadbot.clock import ManualClock
from sandbox import seed
from sandbox.crm_receiver import WEBHOOK_PATH, CrmReceiver
from sandbox.dingtalk import DingTalkSandbox
from sandbox.wecom import SimulatedWeCom

INTAKE_TOKEN = "sandbox-intake-token"
WECOM_ROBOT_KEY = "sandbox-managers-robot"
WECOM = dict(corp_id="wwsandbox0000000001", secret="sandbox-wecom-secret", agent_id=1000002,
             token="SandboxCallbackToken", encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
DINGTALK_TEMPLATE = "sandbox.lead_card.schema"


class DemoClock(ManualClock):
    """A ManualClock that also moves with the wall clock while `running`; advance() jumps ahead."""

    def __init__(self, start: datetime | None = None, *, running: bool = True) -> None:
        super().__init__(start)
        self.running = running
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        if not self.running:
            return self._now
        return self._now + timedelta(seconds=time.monotonic() - self._t0)

    def set(self, when: datetime) -> None:
        super().set(when)
        self._t0 = time.monotonic()


@dataclass
class LogLine:
    at: datetime
    text: str
    ok: bool = True
    detail: str = ""


@dataclass
class Demo:
    """The whole sandbox. `start()` brings everything up; `url` is the page to open."""

    host: str = "127.0.0.1"
    port: int = 8080
    db_path: str | None = None
    config_path: str | None = None
    own_calendar: bool = False
    clock: DemoClock = field(default_factory=DemoClock)
    language: str = "zh"

    def __post_init__(self) -> None:
        self.wecom_users, self.dingtalk_users = seed.platform_users()
        self.wecom = SimulatedWeCom(clock=self.clock, users=self.wecom_users, robots=[WECOM_ROBOT_KEY], **WECOM)
        self.dingtalk = DingTalkSandbox(clock=self.clock, users=self.dingtalk_users, card_template_id=DINGTALK_TEMPLATE,
                                        host=self.host)
        self.log: list[LogLine] = []
        self.card_seen: dict[str, datetime] = {}
        self.leadbot_url = ""
        self.url = ""
        self.settings: Any = None
        self.app: web.Application | None = None
        self._runners: list[web.AppRunner] = []
        self._sockets: list[socket.socket] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._engine: Any = None
        self._http: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self.config_text = seed.ASSIGNMENT_TOML
        self.changes = 0  # bumped on every action; the page's event stream wakes on it
        self.stopping = False
        # The "existing CRM" next to leadbot: [crm_bridge] webhooks go to it, signed with this.
        self.crm = CrmReceiver(secrets.token_hex(24), now=self.clock.now, on_change=self._changed,
                               zone=lambda: self.zone)
        self.crm_webhook_url = ""

    @property
    def zone(self) -> ZoneInfo:
        """The page shows times in the calendar's zone ([calendar] timezone, the admin's own when
        --config has one), like every time leadbot shows a person."""
        from leadbot.settings import CalendarSettings

        return ZoneInfo(self.settings.calendar.timezone if self.settings is not None else CalendarSettings().timezone)

    # ------------------------------------------------------------------ lifecycle

    def _changed(self) -> None:
        self.changes += 1

    def _settings(self, leadbot_url: str, db_url: str, robot_webhook: str, robot_secret: str) -> Any:
        from leadbot.settings import settings_from_mapping

        data: dict[str, Any] = {
            "server": {"host": self.host, "public_url": leadbot_url, "language": self.language,
                       "log_level": "warning"},
            "database": {"url": db_url},
            "intake": {"api_tokens": [INTAKE_TOKEN]},
            "wecom": {**WECOM, "api_base": self.wecom.base_url, "manager_robot_key": WECOM_ROBOT_KEY},
            "dingtalk": self.dingtalk.dingtalk_settings(manager_robot_webhook=robot_webhook,
                                                        manager_robot_secret=robot_secret),
            "assignment": seed.ASSIGNMENT,
            "sla": seed.SLA,
            "calendar": seed.CALENDAR,
            "crm_bridge": {"webhook_urls": [self.crm_webhook_url], "webhook_secret": self.crm.secret},
        }
        if self.config_path:
            # An admin's own file: its ladder, stages, calendar and duty drive the live sandbox;
            # its routing rules go to the playground (they name teams the sandbox does not have).
            own = _read_toml(self.config_path)
            for section in ("sla", "pipeline", "calendar", "duty"):
                if section in own:
                    data[section] = own[section]
            self.own_calendar = "calendar" in own
            if "language" in own.get("server", {}):
                data["server"]["language"] = own["server"]["language"]
            if "assignment" in own:
                self.config_text = Path(self.config_path).read_text(encoding="utf-8")
        return settings_from_mapping(data, environ={}, source="sandbox")

    async def start(self) -> str:
        from bot.app import create_app
        from bot.context import CTX
        from store.db import create_engine
        from store.migrate import upgrade
        from crm.sql_store import SqlCRMStore

        # The page's port first: when it is taken, fail before anything else starts.
        page_sock = _bound_socket(self.host, self.port)
        self._sockets.append(page_sock)
        self.crm_webhook_url = f"http://{self.host}:{page_sock.getsockname()[1]}{WEBHOOK_PATH}"
        await self.wecom.start(self.host, 0)
        await self.dingtalk.start()
        robot_webhook, robot_secret = self.dingtalk.add_custom_robot()

        # leadbot's socket first: its URL goes into its own settings (public_url, H5 links).
        sock = _bound_socket(self.host, 0)
        self._sockets.append(sock)
        self.leadbot_url = f"http://{self.host}:{sock.getsockname()[1]}"
        if self.db_path is None:
            sweep_stale_folders()
            self._tmp = tempfile.TemporaryDirectory(prefix=TMP_PREFIX)
            (Path(self._tmp.name) / "pid").write_text(str(os.getpid()), encoding="ascii")
            self.db_path = str(Path(self._tmp.name) / "leadbot-demo.db")
        db_url = f"sqlite+aiosqlite:///{self.db_path}"
        self.settings = self._settings(self.leadbot_url, db_url, robot_webhook, robot_secret)

        self._engine = create_engine(db_url)
        await upgrade(self._engine)
        store = SqlCRMStore(self._engine, self.clock)
        await seed.seed_store(store)

        self.app = create_app(self.settings, clock=self.clock, engine=self._engine)
        self.ctx = self.app[CTX]
        worker = self.ctx.services.delivery_worker
        if worker is not None:
            # The sandbox runs around the clock (nothing held for quiet hours) unless the admin's
            # own file brings a [calendar]: then it keeps that calendar's hours, to try them.
            worker.quiet_hours = self.own_calendar
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        await web.SockSite(runner, sock).start()

        self.wecom.callback_url = self.leadbot_url + "/callbacks/wecom"
        self.dingtalk.leadbot_url = self.leadbot_url
        for friend in seed.FRIENDS:
            self.wecom.seed_contact(friend["external_userid"], name=friend["name"], unionid=friend["unionid"])

        from sandbox.web.routes import make_web_app

        page = web.AppRunner(make_web_app(self), access_log=None)
        await page.setup()
        self._runners.append(page)
        await web.SockSite(page, page_sock).start()
        self.port = page_sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}/"

        verified = await self.wecom.verify_url()
        self.note("企业微信 verified leadbot's callback URL" if verified.url_verified
                  else f"企业微信 could not verify the callback URL ({verified.status})", ok=verified.url_verified)
        self.note(f"sandbox ready: {len(seed.REPS)} reps, {len(seed.CUSTOMERS)} customers, "
                  f"{len(seed.ASSIGNMENT['rules'])} routing rules")
        return self.url

    async def stop(self) -> None:
        self.stopping = True
        if self._http is not None:
            await self._http.close()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        await self.wecom.stop()
        await self.dingtalk.stop()
        if self._engine is not None:
            await self._engine.dispose()
        if self._tmp is not None:
            self._tmp.cleanup()

    async def __aenter__(self) -> "Demo":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # ------------------------------------------------------------------ helpers

    def note(self, text: str, *, ok: bool = True, detail: str = "") -> None:
        self.log.append(LogLine(self.clock.now(), text, ok, detail))
        del self.log[:-200]
        self.changes += 1

    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        return self._http

    async def settle(self) -> None:
        """Lets leadbot finish what an action started: inbox events, then deliveries (twice:
        processing one can enqueue another)."""
        processor = self.ctx.services.processor
        worker = self.ctx.services.delivery_worker
        for _ in range(3):
            if processor is not None:
                await processor.drain()
            if worker is not None:
                await worker.drain()
        self.changes += 1

    def rep_row(self, userid: str) -> dict[str, str] | None:
        return next((r for r in seed.REPS if userid in (r.get("wecom_userid"), r.get("dingtalk_userid"))), None)

    # ------------------------------------------------------------------ actions from the page

    async def submit_lead(self, fields: dict[str, Any], idempotency_key: str = "") -> tuple[int, Any]:
        """Posts a lead to leadbot's real intake API, as a web form or an ad platform would."""
        headers = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        body = {k: v for k, v in fields.items() if v not in (None, "")}
        async with self._lock:
            async with self.http().post(self.leadbot_url + "/api/v1/leads", json=body, headers=headers) as resp:
                status = resp.status
                text = await resp.text()
            answer = _json_or_text(text)
            await self.settle()
        who = body.get("name") or "(no name)"
        if status in (200, 201) and isinstance(answer, dict):
            self.note(f"POST /api/v1/leads → {status}: lead #{answer.get('id')} {who}")
        else:
            self.note(f"POST /api/v1/leads → {status}", ok=False, detail=str(text)[:300])
        return status, answer

    async def tap(self, platform: str, userid: str, key: str, ref: str) -> dict[str, Any]:
        """`userid` taps a card button: the platform sends leadbot the real callback."""
        action = key.split(":", 1)[0]
        name = (self.rep_row(userid) or {}).get("name", userid)
        async with self._lock:
            if platform == "wecom":
                result = await self.wecom.send_card_event(userid, key, ref)
                status = result.status
                shown = "passive reply" if result.reply else "no passive reply"
            elif platform == "dingtalk":
                dt = await self.dingtalk.tap_card(ref, userid, key=key)
                status = dt.status
                shown = "card data in the answer" if isinstance(dt.body, dict) and dt.body else "empty answer"
            else:
                raise web.HTTPBadRequest(text="platform must be wecom or dingtalk")
            await self.settle()
        label = {"wecom": "企业微信", "dingtalk": "钉钉"}[platform]
        self.note(f"{name} tapped {action} on {label} → leadbot {status} ({shown})", ok=status == 200)
        return {"status": status}

    async def send_text(self, platform: str, userid: str, text: str) -> dict[str, Any]:
        """A rep types to the app (a text command such as 我的线索 / help)."""
        async with self._lock:
            if platform == "wecom":
                result = await self.wecom.send_text(userid, text)
                status = result.status
            else:
                status = (await self.dingtalk.send_robot_text(userid, text)).status
            await self.settle()
        name = (self.rep_row(userid) or {}).get("name", userid)
        self.note(f"{name} sent “{text}” → leadbot {status}", ok=status == 200)
        return {"status": status}

    async def add_friend(self, userid: str, friend: int = 0) -> dict[str, Any]:
        """A customer adds `userid` on WeCom: the change_external_contact callback."""
        info = seed.FRIENDS[friend % len(seed.FRIENDS)]
        async with self._lock:
            result = await self.wecom.send_friend_added(userid, info["external_userid"])
            await self.settle()
        name = (self.rep_row(userid) or {}).get("name", userid)
        self.note(f"{info['name']} added {name} on 企业微信 → leadbot {result.status}", ok=result.ok)
        return {"status": result.status, "external_userid": info["external_userid"]}

    async def advance(self, seconds: float) -> dict[str, Any]:
        """Fast-forward: the clock jumps, the SLA sweep runs, deliveries go out."""
        async with self._lock:
            self.clock.advance(timedelta(seconds=seconds))
            fired = 0
            sweep = self._sweeper()
            if sweep is not None:
                result = await sweep()
                fired = int(getattr(result, "fired", 0) or 0)
            await self.settle()
        swept = "" if sweep is not None else " (no SLA scheduler is wired into this build)"
        self.note(f"clock +{_human(seconds)}: {fired} SLA timer(s) fired{swept}")
        return {"now": self.clock.now().isoformat(), "fired": fired}

    def _sweeper(self) -> Any:
        """The SLA timer sweep, when wired: catch_up fires a long jump's whole backlog in due order."""
        for service in (self.ctx.services.scheduler, self.ctx.services.ladder):
            sweep = getattr(service, "catch_up", None) or getattr(service, "sweep_once", None)
            if callable(sweep):
                return sweep
        return None

    async def forge_crm_event(self) -> dict[str, Any]:
        """Someone who does not hold the webhook secret posts a change event to the CRM: the
        receiver refuses it (401) and the CRM panel shows it with ✗."""
        body = json.dumps({"schema": "leadbot.change/1", "event_id": "forged-" + secrets.token_hex(4),
                           "type": "lead.claimed", "entity": {"type": "lead", "id": 1, "external_id": None},
                           "data": {"lead": {"id": 1, "name": "forged", "status": "claimed"}},
                           "version": 999}, sort_keys=True, separators=(",", ":")).encode()
        ts = str(int(self.clock.now().timestamp()))
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Leadbot-Event-Id": "forged",
                   "X-Leadbot-Timestamp": ts, "X-Leadbot-Signature": "0" * 64}
        async with self.http().post(self.crm_webhook_url, data=body, headers=headers) as resp:
            status = resp.status
        self.note(f"forged change event → CRM {status} (signature refused)", ok=status == 401)
        return {"status": status}

    async def routing_playground(self, config_text: str, n: int = 100) -> dict[str, Any]:
        from sandbox.web.playground import run_playground

        return await run_playground(config_text, self.clock.now(), n=n)

    # ------------------------------------------------------------------ platform faults

    def _platform(self, name: str) -> Any:
        return {"wecom": self.wecom, "dingtalk": self.dingtalk}[name]

    async def faults(self) -> dict[str, Any]:
        """Each documented refusal the simulated platforms can answer (on or off), and what
        leadbot holds back meanwhile (rows waiting after a throttle, with the platform's answer)."""
        from sandbox.dingtalk import FAULTS as DINGTALK_FAULTS
        from sandbox.wecom import FAULTS as WECOM_FAULTS

        listed = [{"platform": platform, "name": name, "label": label, "on": name in self._platform(platform).faults}
                  for platform, catalogue in (("dingtalk", DINGTALK_FAULTS), ("wecom", WECOM_FAULTS))
                  for name, label in catalogue.items() if name != "token_expired"]
        outbox = self.ctx.services.outbox
        rows = await outbox.list(("pending",), 200) if outbox is not None else []
        waiting = [{"channel": e.channel, "until": _hhmmss(e.next_attempt_at, self.zone), "error": e.last_error[:120]}
                   for e in rows if e.last_error and ("throttle" in e.last_error or "blocked" in e.last_error)]
        return {"faults": listed, "waiting": waiting[:12]}

    async def set_fault(self, platform: str, name: str, on: bool) -> dict[str, Any]:
        sandbox = self._platform(platform)
        if on:
            sandbox.set_fault(name)
        else:
            sandbox.clear_fault(name)
        self.note(f"{'开启' if on else '关闭'}故障 {platform}:{name}", ok=not on)
        return await self.faults()

    # ------------------------------------------------------------------ what the page shows

    def tour_words(self, lang: str | None = None) -> dict[str, Any]:
        """Everything the guided tour says, in ``lang`` (default: the sandbox's language)."""
        from bot.cards.formatting import format_duration
        from leadbot.i18n import keys, lookup, normalize_lang, t
        from leadbot.durations import parse_duration

        lang = normalize_lang(lang or self.settings.server.language)
        sla = self.settings.sla
        times = {"remind": format_duration(parse_duration(sla.first_touch_remind).total_seconds(), lang),
                 "escalate": format_duration(parse_duration(sla.first_touch_escalate).total_seconds(), lang)}
        steps = {}
        for step in ("intro", "submit", "claim", "race", "escalate", "friend", "merge", "finish"):
            steps[step] = {"title": t(f"tour.{step}.title", lang), "body": t(f"tour.{step}.body", lang, **times)}
        labels = {k: t(f"sandbox.{k}", lang) for k in ("tour", "next", "back", "close", "done", "details", "send")}
        labels["step"] = "{n} / {total}"
        # The words around the phones' messages, so a phone in English mode is English throughout;
        # "{x}" placeholders stay for the page to fill.
        labels |= {k: t(k, lang, platform="{platform}", status="{status}", lead="{lead}") for k in keys()
                   if k.startswith(("sandbox.phone.", "sandbox.role.", "sandbox.group.", "sandbox.status.",
                                    "sandbox.page."))
                   or k == "sandbox.lead_stored"}
        labels |= {f"platform.{p}": t(f"channel.{p}", lang) for p in ("wecom", "dingtalk")}
        controls = {k: t(f"sandbox.control.{k}", lang)
                    for k in ("submit", "friend", "pool", "north", "dup", "ff60", "ff180", "ff300", "ff1800", "ff86400")}
        channels = {c: lookup("channel", c, lang) for c in seed.CHANNELS}
        return {"lang": lang, "steps": steps, "labels": labels, "channels": channels, "controls": controls, "clock": t("sandbox.clock", lang, **times),
                "clock_short": t("sandbox.clock_short", lang, **times)}

    async def state(self) -> dict[str, Any]:
        from leadbot.i18n import lookup

        lang = self.settings.server.language
        store = self.ctx.store
        reps = {r.external_id: r for r in await store.list_reps()}
        leads = await store.list_leads(limit=40)
        names = {r.id: r.name for r in reps.values()}
        failures = await self._delivery_failures()
        failures_by: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for f in failures:
            target = ("group", "") if f["channel"].endswith("_robot") else (f["channel"], f["recipient"])
            failures_by.setdefault(target, []).append(f)
        phones = []
        for row in seed.REPS:
            rep = reps.get(row["id"])
            if row.get("wecom_userid"):
                platform, userid = "wecom", row["wecom_userid"]
                messages = self._wecom_messages(userid)
            else:
                platform, userid = "dingtalk", row["dingtalk_userid"]
                messages = self._dingtalk_messages(userid)
            mine = failures_by.get((platform, userid), [])
            if mine:
                messages = sorted([*messages, *mine], key=lambda m: m["at"])
            phones.append({"id": row["id"], "name": row["name"], "team": row["team"], "role": row["role"],
                           "status": rep.status if rep else row["status"],
                           "delivery": rep.delivery if rep else row["delivery"],
                           "platform": platform, "userid": userid, "messages": messages,
                           "failed": sum(1 for f in mine if f["state"] == "dead")})
        return {
            "now": self.clock.now().isoformat(),
            "language": lang,
            "now_local": self.clock.now().astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S"),
            "timezone": str(self.zone),
            "leadbot_url": self.leadbot_url,
            "intake_token": INTAKE_TOKEN,
            "phones": phones,
            "group": sorted([*self._group_messages(), *failures_by.get(("group", ""), [])], key=lambda m: m["at"]),
            "failures": {"dead": sum(1 for f in failures if f["state"] == "dead"),
                         "retrying": sum(1 for f in failures if f["state"] != "dead"),
                         "items": failures[-20:][::-1]},
            "leads": [{"id": lead.id, "name": lead.name, "company": lead.company, "region": lead.region,
                       "channel": lead.source_channel, "channel_label": lookup("channel", lead.source_channel, lang)
                       if lead.source_channel else "", "status": lead.status, "stage": lead.stage,
                       "owner": names.get(lead.owner_id or 0, ""), "owner_id": lead.owner_id,
                       "flags": list(lead.flags)} for lead in leads],
            "log": [{"at": _hhmmss(line.at, self.zone), "text": line.text, "ok": line.ok, "detail": line.detail}
                    for line in self.log[-60:]][::-1],
            "friends": [{"index": i, "name": f["name"], "corp": f["corp_name"]} for i, f in enumerate(seed.FRIENDS)],
            "sla": {k: v for k, v in _sla_view(self.settings).items()},
            "crm": self.crm.view(),
        }

    def _wecom_messages(self, userid: str) -> list[dict[str, Any]]:
        out = []
        for msg in self.wecom.messages_for(userid):
            item: dict[str, Any] = {"at": msg["at"].isoformat(), "time": _hhmm(msg["at"], self.zone),
                                    "msgid": msg["msgid"],
                                    "recalled": msg.get("recalled", False)}
            content = msg["content"]
            kind = msg["msgtype"]
            if kind == "template_card":
                item.update(type="wecom_card", card=wecom_card_json(msg.get("card") or content), task_id=msg["task_id"],
                            replace_name=msg.get("replace_name", ""))
            elif kind in ("text", "markdown"):
                item.update(type=kind, text=content.get("content", ""))
            elif kind == "textcard":
                item.update(type="textcard", title=content.get("title", ""), text=content.get("description", ""),
                            url=content.get("url", ""), btntxt=content.get("btntxt", ""))
            else:
                item.update(type="other", text=json.dumps(content, ensure_ascii=False)[:500])
            out.append(item)
        for welcome in self.wecom.welcome_messages:
            if welcome["userid"] == userid:
                out.append({"at": welcome["at"].isoformat(), "time": _hhmm(welcome["at"], self.zone), "type": "system",
                            "text": f"欢迎语已发给客户 {welcome['external_userid']}: {welcome['text']}"})
        return sorted(out, key=lambda m: m["at"])

    def _dingtalk_messages(self, userid: str) -> list[dict[str, Any]]:
        out = []
        space = f"IM_ROBOT.{userid}"
        now = self.clock.now()
        for card in self.dingtalk.cards.values():
            if space not in card.spaces:
                continue
            seen = self.card_seen.setdefault(card.out_track_id, now)
            out.append({"at": seen.isoformat(), "time": _hhmm(seen, self.zone), "type": "dingtalk_card",
                        "out_track_id": card.out_track_id, "params": card.view(userid), "updates": card.updates})
        for notice in self.dingtalk.notices_for(userid):
            msg = notice["msg"]
            kind = msg.get("msgtype")
            body = msg.get(kind) or {}
            item: dict[str, Any] = {"at": notice["at"].isoformat(), "time": _hhmm(notice["at"], self.zone)}
            if kind == "text":
                item.update(type="text", text=body.get("content", ""))
            elif kind == "markdown":
                item.update(type="markdown", title=body.get("title", ""), text=body.get("text", ""))
            elif kind == "action_card":
                buttons = [{"title": b.get("title", ""), "url": b.get("action_url", "")}
                           for b in body.get("btn_json_list") or []]
                if body.get("single_url"):
                    buttons.append({"title": body.get("single_title", ""), "url": body["single_url"]})
                item.update(type="action_card", title=body.get("title", ""), text=body.get("markdown", ""),
                            buttons=buttons)
            elif kind == "link":
                item.update(type="textcard", title=body.get("title", ""), text=body.get("text", ""),
                            url=body.get("messageUrl", ""))
            else:
                item.update(type="other", text=json.dumps(msg, ensure_ascii=False)[:500])
            out.append(item)
        for rm in self.dingtalk.robot_messages:
            if rm["user"] == userid:
                out.append(_robot_item(rm["msgKey"], rm["param"], rm["at"], self.zone))
        for reply in self.dingtalk.session_replies:
            if reply["conversation"].endswith(_conversation_suffix(userid)):
                out.append(_custom_robot_item(reply["msg"], reply["at"], self.zone))
        return sorted(out, key=lambda m: m["at"])

    async def _delivery_failures(self) -> list[dict[str, Any]]:
        """What leadbot could not deliver (dead letters), and what it is still retrying after an
        error: shown on the phone (or group) it was meant for and counted at the top of the page,
        not only in the terminal's log."""
        outbox = self.ctx.services.outbox
        if outbox is None:
            return []
        rows = [*await outbox.list(("dead",), limit=200),
                *[e for e in await outbox.list(("pending",), limit=500) if e.last_error]]
        out = []
        for e in sorted(rows, key=lambda e: e.created_at):
            out.append({"at": e.created_at.isoformat(), "time": _hhmm(e.created_at, self.zone), "type": "failure",
                        "state": e.state, "channel": e.channel, "recipient": e.recipient, "kind": e.kind,
                        "attempts": e.attempts, "lead_id": e.lead_id, "error": (e.last_error or "")[:240],
                        "platform": e.channel.removesuffix("_robot")})
        return out

    def _group_messages(self) -> list[dict[str, Any]]:
        out = []
        for key, messages in self.wecom.robot_messages.items():
            for m in messages:
                body = m["body"]
                content = body.get(m["msgtype"]) or {}
                item = {"at": m["at"].isoformat(), "time": _hhmm(m["at"], self.zone), "platform": "wecom",
                        "type": "markdown" if m["msgtype"].startswith("markdown") else "text",
                        "text": content.get("content", json.dumps(content, ensure_ascii=False)),
                        "mentions": content.get("mentioned_list", [])}
                if m["msgtype"] == "image":
                    # A group robot's image message (the digest chart): shown as the image, never
                    # as its base64 text.
                    item.update(type="image", text="", src=_image_src(str(content.get("base64", ""))))
                out.append(item)
        for m in self.dingtalk.group_messages:
            if m.get("via") == "custom_robot":
                item = _custom_robot_item(m["msg"], m["at"], self.zone)
            else:
                item = _robot_item(m["msgKey"], m["param"], m["at"], self.zone)
            item["platform"] = "dingtalk"
            out.append(item)
        return sorted(out, key=lambda m: m["at"])


# ---------------------------------------------------------------------- small helpers

_IMAGE_MAGIC = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def _image_src(b64: str) -> str:
    """A data: URL for a PNG/JPEG robot image (WeCom accepts only those two), '' for anything else."""
    import base64
    import binascii

    try:
        head = base64.b64decode(b64[:16] + "=" * (-len(b64[:16]) % 4), validate=False)
    except (binascii.Error, ValueError):
        return ""
    for magic, mime in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            return f"data:{mime};base64,{b64}"
    return ""


TMP_PREFIX = "leadbot-demo-"


def sweep_stale_folders(root: str | None = None) -> list[str]:
    """Removes the temporary folders of demos that died without cleaning up (SIGKILL, a crash):
    each folder names its process in ``pid``; a folder whose process is gone is removed. Folders
    of running demos, and folders without a pid file, are left alone."""
    import shutil

    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(TMP_PREFIX + "*"):
        try:
            pid = int((folder / "pid").read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
            continue  # still running (or another user's: not ours to touch)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(str(folder))
    return removed


def _bound_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _read_toml(path: str) -> dict[str, Any]:
    import tomllib

    with open(path, "rb") as f:
        return tomllib.load(f)


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _hhmm(at: datetime, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%H:%M")


def _hhmmss(at: datetime, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%H:%M:%S")


def _human(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def _conversation_suffix(userid: str) -> str:
    import hashlib

    return hashlib.sha1(userid.encode()).hexdigest()[:20]


def _robot_item(msg_key: str, param: dict[str, Any], at: datetime, zone: tzinfo) -> dict[str, Any]:
    item: dict[str, Any] = {"at": at.isoformat(), "time": _hhmm(at, zone)}
    if msg_key == "sampleText":
        item.update(type="text", text=param.get("content", ""))
    elif msg_key == "sampleMarkdown":
        item.update(type="markdown", title=param.get("title", ""), text=param.get("text", ""))
    elif msg_key.startswith("sampleActionCard"):
        buttons = []
        for i in range(1, 7):
            for title_key, url_key in ((f"actionTitle{i}", f"actionURL{i}"), (f"buttonTitle{i}", f"buttonUrl{i}")):
                if param.get(title_key):
                    buttons.append({"title": param[title_key], "url": param.get(url_key, "")})
        if param.get("singleTitle"):
            buttons.append({"title": param["singleTitle"], "url": param.get("singleURL", "")})
        item.update(type="action_card", title=param.get("title", ""), text=param.get("text", ""), buttons=buttons)
    else:
        item.update(type="other", text=json.dumps(param, ensure_ascii=False)[:500])
    return item


def _custom_robot_item(msg: dict[str, Any], at: datetime, zone: tzinfo) -> dict[str, Any]:
    item: dict[str, Any] = {"at": at.isoformat(), "time": _hhmm(at, zone)}
    kind = msg.get("msgtype")
    body = msg.get(kind) or {}
    if kind == "text":
        item.update(type="text", text=body.get("content", ""))
    elif kind == "markdown":
        item.update(type="markdown", title=body.get("title", ""), text=body.get("text", ""))
    elif kind == "actionCard":
        buttons = [{"title": b.get("title", ""), "url": b.get("actionURL", "")} for b in body.get("btns") or []]
        if body.get("singleURL"):
            buttons.append({"title": body.get("singleTitle", ""), "url": body["singleURL"]})
        item.update(type="action_card", title=body.get("title", ""), text=body.get("text", ""), buttons=buttons)
    else:
        item.update(type="other", text=json.dumps(msg, ensure_ascii=False)[:500])
    item["mentions"] = (msg.get("at") or {}).get("atUserIds", [])
    return item


_XML_NAMES = {"KeyName": "keyname"}
_INT_KEYS = {"type", "style", "desc_color"}


def wecom_card_json(card: Any) -> Any:
    """A template card as the client sees it, whichever way it arrived: message/send's JSON, or
    the XML of a passive reply (CamelCase names, repeated elements, numbers as text), which the
    simulated WeCom stores as parsed."""
    if not isinstance(card, dict) or "card_type" in card:
        return card

    def name(key: str) -> str:
        if key in _XML_NAMES:
            return _XML_NAMES[key]
        return "".join("_" + c.lower() if c.isupper() else c for c in key).lstrip("_")

    def convert(key: str, value: Any) -> Any:
        if isinstance(value, dict):
            if key.endswith("_list") and len(value) == 1:
                (inner,) = value.values()
                if isinstance(inner, (list, dict)):
                    value = inner
            if isinstance(value, dict):
                value = {name(k): convert(name(k), v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(key[:-5] if key.endswith("_list") else key, v) for v in value]
        if key.endswith("_list") and isinstance(value, dict):
            return [value]
        if key in _INT_KEYS and isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        return value

    out = {name(k): convert(name(k), v) for k, v in card.items()}
    for key, value in list(out.items()):
        if key.endswith("_list") and isinstance(value, dict):
            out[key] = [value]
    return out


def _sla_view(settings: Any) -> dict[str, str]:
    sla = settings.sla
    return {"remind": sla.first_touch_remind, "escalate": sla.first_touch_escalate,
            "reassign": sla.first_touch_reassign, "pool_return": sla.pool_return}


async def serve(config_path: str | None, port: int, *, host: str = "127.0.0.1") -> None:
    demo = Demo(host=host, port=port, config_path=config_path)
    try:
        url = await demo.start()
    except OSError as e:
        await demo.stop()
        raise SystemExit(f"sandbox: cannot listen on {host}:{port}: {e.strerror or e} (try --port)") from None
    print(f"leadbot sandbox is up: open {url}", flush=True)
    print(f"  leadbot        {demo.leadbot_url}  (intake token: {INTAKE_TOKEN})", flush=True)
    print(f"  企业微信 (sim) {demo.wecom.base_url}", flush=True)
    print(f"  钉钉 (sim)     {demo.dingtalk.base}", flush=True)
    print(f"  database       {demo.db_path}", flush=True)
    print("Press Ctrl+C to stop.", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGTERM (a service manager, `kill`, a container stop) ends the demo the way Ctrl+C does:
    # through demo.stop(), which removes the temporary database folder. Without a handler the
    # process would die on SIGTERM with the folder left behind.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await demo.stop()


def run_demo(config_path: str | None, port: int) -> None:
    """Entry point of `leadbot demo`: runs until Ctrl+C."""
    from leadbot.logs import configure_logging

    configure_logging("console", "warning")
    print("starting the sandbox (leadbot, simulated 企业微信 and 钉钉)…", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config_path, port))
    print("sandbox stopped", flush=True)


__all__ = ["Demo", "DemoClock", "run_demo", "INTAKE_TOKEN"]
