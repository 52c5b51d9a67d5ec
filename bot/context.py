"""The context every route and handler receives: settings, clock, stores and services.

bot/app.py builds exactly one per application; nothing else holds engines, clients or settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.metrics import Metrics
from store.inbox import Inbox
from crm.store import CRMStore
from leadbot.clock import Clock
from leadbot.settings import Settings

if TYPE_CHECKING:  # the services' own types, named for readers and type checkers only
    from bot.actions.buttons import ButtonFactory
    from bot.actions.effects import AfterEffects
    from bot.actions.service import ActionService
    from bot.actions.storm import StormDigests
    from bot.actions.tokens import ActionSigner
    from bot.api.crm_api import WebhookSender
    from bot.api.refusals import RefusalLimiter
    from bot.handlers.inbox import InboxProcessor
    from bot.journey.flow import Flow
    from bot.journey.identity import IdentityActions
    from bot.platforms.dingtalk.client import DingTalkClient
    from bot.platforms.dingtalk.inbound import DingTalkInbound
    from bot.platforms.dingtalk.stream import StreamTransport
    from bot.platforms.wecom.client import WeComClient
    from crm.leads import LeadActions
    from crm_bridge.capture import ChangeCapture
    from crm_bridge.inbound import CrmInbound
    from notifications.worker import DeliveryWorker
    from routing.engine import Router
    from scheduler.runner import SchedulerRunner
    from scheduler.service import LadderService
    from store.kv import KeyValueStore
    from store.outbox import OutboxRepo
    from store.timers import TimerStore


class Worker(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass(slots=True)
class Services:
    """The feature services create_app wires, each under its own name. A service a setup does
    not wire (no DingTalk configured, a test app without the scheduler) is None, and its users
    degrade; slots make a misspelt name an error instead of a silent new key."""

    start_workers: bool = True
    # Started with the app in this order and stopped in reverse; then on_shutdown, in reverse.
    workers: list[Worker] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    processor: InboxProcessor | None = None
    # Actions and the journey (bot/app.py setup_actions; signer and what needs it at start-up).
    lead_actions: LeadActions | None = None
    kv: KeyValueStore | None = None
    router: Router | None = None
    explain_for_rep: Callable[[Any, str], Awaitable[str]] | None = None
    signer: ActionSigner | None = None
    buttons: ButtonFactory | None = None
    flow: Flow | None = None
    identity: IdentityActions | None = None
    actions: ActionService | None = None
    effects: AfterEffects | None = None
    on_new_lead: Callable[[Any], Awaitable[Any]] | None = None
    # SLA timers (setup_scheduler).
    timers: TimerStore | None = None
    ladder: LadderService | None = None
    scheduler: SchedulerRunner | None = None
    sla_due: Callable[..., Awaitable[Any]] | None = None
    missed_first_touch: Callable[[int], Awaitable[bool]] | None = None
    is_silent: Callable[[Any, Any], bool] | None = None
    # Delivery (setup_delivery).
    storm: StormDigests | None = None
    outbox: OutboxRepo | None = None
    delivery_worker: DeliveryWorker | None = None
    # Platforms, each when configured.
    wecom_client: WeComClient | None = None
    dingtalk_client: DingTalkClient | None = None
    dingtalk_inbound: DingTalkInbound | None = None
    dingtalk_stream: StreamTransport | None = None
    # The CRM bridge, when configured.
    crm_inbound: CrmInbound | None = None
    crm_capture: ChangeCapture | None = None
    crm_webhook_sender: WebhookSender | None = None
    h5_refusals: RefusalLimiter | None = None

    def client_for(self, platform: str) -> WeComClient | DingTalkClient | None:
        """The API client of a platform by name (None when it is not configured)."""
        return {"wecom": self.wecom_client, "dingtalk": self.dingtalk_client}.get(platform)


@dataclass
class AppContext:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    store: CRMStore
    inbox: Inbox
    metrics: Metrics
    log: Any
    # Feature services wired by create_app (platform clients, outbox, scheduler, processor…).
    services: Services = field(default_factory=Services)

    @property
    def lang(self) -> str:
        return self.settings.server.language


CTX: web.AppKey[AppContext] = web.AppKey("leadbot_ctx", AppContext)


def ctx_of(request: web.Request) -> AppContext:
    return request.app[CTX]
