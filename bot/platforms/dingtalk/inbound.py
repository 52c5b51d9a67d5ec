"""Taking verified DingTalk callbacks into the inbox, the same way for HTTP and Stream.

Events and robot messages are stored (dedupe key UNIQUE), acknowledged, and handled later by the
inbox processor. Card taps are stored under the same rule and then handled inline, because
DingTalk shows the answer of the callback (within 2 s) as the card's new state.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any, Mapping

from bot.platforms.dingtalk.normalize import Inbound, card_callback, robot_message
from store.inbox import DEFERRED

if TYPE_CHECKING:
    from bot.context import AppContext

# DingTalk gives a card callback 2 s; leave room for the network and the JSON.
CARD_BUDGET_SECONDS = 1.5
_DINGTALK_KEYS = ("cardData", "userPrivateData", "cardUpdateOptions")


def _param_map(values: Mapping[str, Any]) -> dict[str, str]:
    # cardParamMap is string -> string; lists and objects travel as JSON text.
    return {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
            for k, v in values.items()}


def card_response(result: Any) -> dict[str, Any]:
    """The synchronous answer to a card callback, from what the handler returned.

    Accepted handler results: DingTalk's own shape (``cardData`` / ``userPrivateData`` /
    ``cardUpdateOptions``) or the neutral ``{"card_data": {…}, "private_data": {…},
    "replace": False}``; a result with a ``tap_reply()`` method is asked for it.
    Anything else (True, None) answers ``{}``: the card stays as it is."""
    if result is None or isinstance(result, bool):
        return {}
    method = getattr(result, "tap_reply", None)
    if callable(method):
        result = method()
    if not isinstance(result, Mapping):
        return {}
    if any(k in result for k in _DINGTALK_KEYS):
        out: dict[str, Any] = {}
        for key in ("cardData", "userPrivateData"):
            part = result.get(key)
            if isinstance(part, Mapping):
                params = part.get("cardParamMap", part)
                out[key] = {"cardParamMap": _param_map(params if isinstance(params, Mapping) else {})}
        options = result.get("cardUpdateOptions")
        if isinstance(options, Mapping):
            out["cardUpdateOptions"] = {k: bool(v) for k, v in options.items()}
        return out
    if "card_data" in result or "private_data" in result:
        by_key = not bool(result.get("replace", False))
        out = {}
        if isinstance(result.get("card_data"), Mapping):
            out["cardData"] = {"cardParamMap": _param_map(result["card_data"])}
        if isinstance(result.get("private_data"), Mapping):
            out["userPrivateData"] = {"cardParamMap": _param_map(result["private_data"])}
        out["cardUpdateOptions"] = {"updateCardDataByKey": by_key, "updatePrivateDataByKey": by_key}
        return out
    return {}


class DingTalkInbound:
    """Shared by the HTTP routes and the Stream handlers."""

    def __init__(self, ctx: "AppContext", card_budget: float = CARD_BUDGET_SECONDS) -> None:
        self.ctx = ctx
        self.card_budget = card_budget

    @property
    def _processor(self) -> Any:
        return self.ctx.services.processor

    async def store(self, item: Inbound, transport: str, once: Mapping[str, Any] | None = None) -> int | None:
        """Writes the row; None when it is a resend of a stored one (logged, acknowledged);
        DEFERRED when SQLite's write lock is held elsewhere past the ack budget (the event is
        in the spill journal, on disk: store/spill.py). `once`: a lease the row must win
        first, which the caller could not take in time: the row is deferred with it."""
        inbox = self.ctx.inbox
        kind = f"dingtalk_{item.kind}"
        if once is not None:
            entry_id: int | None = inbox.defer(inbox.values_for("dingtalk", item.dedupe_key, kind, item.payload), once)
        else:
            entry_id = await inbox.put("dingtalk", item.dedupe_key, kind, item.payload, within=inbox.ACK_WRITE_SECONDS)
        outcome = "duplicate" if entry_id is None else "deferred" if entry_id == DEFERRED else "stored"
        self.ctx.metrics.callbacks.labels("dingtalk", outcome).inc()
        self.ctx.log.info("dingtalk.callback_" + outcome, kind=item.kind, transport=transport,
                          dedupe_key=item.dedupe_key[:120])
        return entry_id

    async def accept(self, item: Inbound, transport: str, once: Mapping[str, Any] | None = None) -> int | None:
        """Store, wake the processor, return: the platform is answered before any handling."""
        entry_id = await self.store(item, transport, once)
        processor = self._processor
        if entry_id is not None and entry_id != DEFERRED and processor is not None:
            processor.notify()
        return entry_id

    async def accept_robot(self, body: Mapping[str, Any], transport: str,
                           once: Mapping[str, Any] | None = None) -> int | None:
        return await self.accept(robot_message(body, self.ctx.clock.now()), transport, once)

    async def accept_card(self, body: Mapping[str, Any], ts_ms: int | None, transport: str) -> dict[str, Any]:
        """Stores the tap and handles it inline within the card budget (counted from the
        arrival: storing is part of DingTalk's 2 s); answers the card data."""
        started = time.monotonic()
        item = card_callback(body, ts_ms, self.ctx.clock.now())
        entry_id = await self.store(item, transport)
        processor = self._processor
        if entry_id is None or entry_id == DEFERRED or processor is None:
            # A deferred tap is handled when the journal is replayed; its card follows the lead.
            return {}
        task = asyncio.ensure_future(processor.process(entry_id))
        try:
            left = max(0.0, self.card_budget - (time.monotonic() - started))
            result = await asyncio.wait_for(asyncio.shield(task), timeout=left)
        except asyncio.TimeoutError:
            # Too slow for DingTalk's 2 s (dt/event-callback-card; conformance D4): the work
            # finishes in the background and then updates the tapped card through the update API.
            processor.answer_late(task)
            self.ctx.log.warning("dingtalk.card_slow", entry_id=entry_id)
            return {}
        return card_response(result)
