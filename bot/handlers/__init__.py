"""Feature handlers: plain async functions over neutral events (bot.events).

`dispatch` routes an event to every handler registered for its type. Handler modules register
themselves with `@handles(EventType)`; bot/app.py imports them, so registration is explicit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable

if TYPE_CHECKING:
    from bot.context import AppContext

HandlerFn = Callable[[Any, "AppContext"], Awaitable[Any]]
_REGISTRY: dict[type, list[HandlerFn]] = {}


def handles(*event_types: type) -> Callable[[HandlerFn], HandlerFn]:
    def register(fn: HandlerFn) -> HandlerFn:
        for t in event_types:
            if fn not in _REGISTRY.setdefault(t, []):
                _REGISTRY[t].append(fn)
        return fn
    return register


async def dispatch(event: Any, ctx: "AppContext") -> Any:
    """Runs the handlers for the event's type; returns the last non-None result (card actions
    use it to answer the platform synchronously). Unknown event types are logged and dropped."""
    fns = _REGISTRY.get(type(event))
    if not fns:
        ctx.log.info("event.unhandled", event_type=type(event).__name__)
        return None
    result = None
    for fn in fns:
        out = await fn(event, ctx)
        if out is not None:
            result = out
    return result
