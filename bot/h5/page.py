"""GET /a/{token} shows the lead with the same buttons the card has; POST /a/{token} performs one.

The link's token is bound to one recipient; every button on the page carries its own signed key
for that same recipient, and a key for anyone else is refused even if pasted into the form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from bot.actions.buttons import BUTTON_TTL, ESCALATED_OWNER, actions_for
from bot.actions.service import ActionOutcome, Actor
from bot.actions.tokens import ActionClaims, TokenError
from bot.cards.builders import build_claimed_card, build_lead_card, make_buttons, storm_title
from bot.cards.formatting import format_ago, mask_phone
from leadbot.i18n import t
from bot.context import AppContext, ctx_of
from bot.journey.views import lead_card_view
from bot.api.refusals import RefusalLimiter
from bot.actions.storm import BATCH
from crm.leads import stages_from_settings

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                          autoescape=True, trim_blocks=True, lstrip_blocks=True)
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8",
                        headers=_SECURITY_HEADERS)


def _error_page(ctx: AppContext, message: str, status: int) -> web.Response:
    from bot.cards.builders import build_notice_card

    card = build_notice_card(t("brand", ctx.lang), message, lang=ctx.lang)
    return _html(_ENV.get_template("action.html").render(card=card, buttons=[], gates=[], lang=ctx.lang,
                                                         message=message, ok=False, code="error"), status)


def _limiter(ctx: AppContext) -> RefusalLimiter:
    if ctx.services.h5_refusals is None:
        ctx.services.h5_refusals = RefusalLimiter()
    return ctx.services.h5_refusals


async def _verify(ctx: AppContext, request: web.Request) -> ActionClaims | web.Response:
    signer = ctx.services.signer
    client = request.remote or ""
    now = ctx.clock.now()
    limiter = _limiter(ctx)
    if limiter.blocked(client, now):
        # Too many bad links from this address: no verification, no page, no audit row.
        resp = web.Response(status=429, text="too many invalid links; retry later",
                            headers={"Retry-After": str(limiter.retry_after(client, now))})
        return resp
    try:
        return signer.verify(request.match_info["token"], now, action="open")
    except TokenError as e:
        audit, _ = limiter.note(client, now)
        if audit:  # the first refusal of this client's window; the rest are counted only
            await ctx.store.audit("h5", "action.refused", "", "", {"reason": f"link_{e.kind}"})
        ctx.metrics.child(ctx.metrics.callbacks, "h5", f"refused_{e.kind}").inc()
        key = "error.token_expired" if e.kind == "expired" else "error.token_forged"
        return _error_page(ctx, t(key, ctx.lang), 410 if e.kind == "expired" else 403)


async def _render(ctx: AppContext, claims: ActionClaims, outcome: ActionOutcome | None = None) -> web.Response:
    lead = await ctx.store.get_lead(claims.lead_id)
    rep = await ctx.store.get_rep(claims.rep_id) if claims.rep_id else None
    if lead is None or rep is None:
        return _error_page(ctx, t("error.not_found", ctx.lang), 404)
    now = ctx.clock.now()
    view = await lead_card_view(ctx, lead)
    actions = actions_for(lead, rep)
    keys = ctx.services.buttons.keys(lead, claims.audience, actions, now)
    buttons = make_buttons(keys, ctx.lang)
    mine = lead.owner_id == rep.id and lead.claimed_at is not None
    if lead.claimed_at and not mine:
        names = await ctx.services.lead_actions.rep_names([lead.owner_id] if lead.owner_id else [])
        card = build_claimed_card(view, claimer_name=names.get(lead.owner_id or 0, ""), now=now, lang=ctx.lang)
    elif mine:
        # Claimed by this viewer: the page says "你已认领：…", not "新线索：…" (the title the
        # lead card had before the claim).
        card = build_claimed_card(view, claimer_name=rep.name, now=now, lang=ctx.lang, claimed_by_viewer=True)
    else:
        card = build_lead_card(view, now=now, lang=ctx.lang)
    gates = []
    if "advance" in actions:
        stages = stages_from_settings(ctx.settings.pipeline.stages)
        names = [s.name for s in stages]
        nxt = names.index(lead.stage) + 1 if lead.stage in names else 0
        if nxt < len(stages):
            for g in stages[nxt].gates:
                try:
                    label = t(f"gate.{g}", ctx.lang)
                except KeyError:
                    label = g
                gates.append({"code": g, "label": label})
    page = _ENV.get_template("action.html").render(
        card=card, buttons=[{"key": b.key, "text": b.text, "style": b.style, "action": b.action} for b in buttons],
        gates=gates, lang=ctx.lang, message=outcome.message if outcome else "",
        ok=outcome.ok if outcome else True, code=outcome.code if outcome else "")
    return _html(page)


async def _render_storm(ctx: AppContext, claims: ActionClaims, outcome: ActionOutcome | None = None) -> web.Response:
    """A storm digest's full list: every lead as it is now (phone masked), a reassign for each
    one still waiting, and 全部改派; every key bound to this page's recipient."""
    rep = await ctx.store.get_rep(claims.rep_id) if claims.rep_id else None
    storm = ctx.services.storm
    digest = str(claims.args.get(BATCH) or "")
    batch = await storm.batch(digest, rep) if rep is not None else None
    if rep is None or batch is None:
        return _error_page(ctx, t("error.not_found", ctx.lang), 404)
    signer = ctx.services.signer
    now = ctx.clock.now()
    leads = {lead_id: await ctx.store.get_lead(lead_id) for lead_id, _ in batch}
    owners = {o for _, o in batch if o}
    names = await ctx.services.lead_actions.rep_names(sorted(owners))
    rows = []
    for lead_id, owner_id in batch:
        lead = leads[lead_id]
        why = await storm.why_not(lead, owner_id)
        view = await lead_card_view(ctx, lead) if lead is not None else None
        rows.append({
            "lead_id": lead_id,
            "name": view.customer_name if view else f"#{lead_id}",
            "company": view.company if view else "",
            "phone": mask_phone(view.phone) if view else "",  # the list is a summary: never a full number
            "owner": names.get(owner_id or 0, t("value.none", ctx.lang)),
            "since": format_ago(lead.assigned_at, now, ctx.lang) if lead is not None and lead.assigned_at else "",
            "now": why or t("storm.open", ctx.lang),
            "open": why is None,
            "key": signer.key("reassign", lead_id, claims.audience, now + BUTTON_TTL,
                              {ESCALATED_OWNER: owner_id or 0}) if why is None else "",
        })
    waiting = sum(1 for r in rows if r["open"])
    all_key = signer.key("reassign", claims.lead_id, claims.audience, now + BUTTON_TTL, {BATCH: digest}) \
        if waiting else ""
    page = _ENV.get_template("storm.html").render(
        lang=ctx.lang, title=t("storm.list_title", ctx.lang, n=len(rows)),
        subtitle=storm_title(rep.team or "", waiting, ctx.lang) if waiting else "",
        rows=rows, all_key=all_key, t=lambda key, **kw: t(key, ctx.lang, **kw),
        message=outcome.message if outcome else "", ok=outcome.ok if outcome else True,
        code=outcome.code if outcome else "",
        details=outcome.card.body.splitlines() if outcome is not None and outcome.card is not None else [])
    return _html(page)


async def get_action_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    claims = await _verify(ctx, request)
    if isinstance(claims, web.Response):
        return claims
    if claims.args.get(BATCH):
        return await _render_storm(ctx, claims)
    return await _render(ctx, claims)


async def post_action_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    claims = await _verify(ctx, request)
    if isinstance(claims, web.Response):
        return claims
    try:
        form: Any = await request.post()
    except ValueError:
        return _error_page(ctx, t("error.not_allowed", ctx.lang), 400)
    key = str(form.get("key", ""))
    signer = ctx.services.signer
    try:
        action_claims = signer.parse_key(key, ctx.clock.now())
    except TokenError:
        action_claims = None
    storm = claims.args.get(BATCH)
    if action_claims is not None and (action_claims.audience != claims.audience
                                      or not await _belongs(ctx, claims, action_claims)):
        # A key from someone else's card pasted into this page.
        await ctx.store.audit("h5", "action.refused", "lead", str(claims.lead_id), {"reason": "audience_mismatch"})
        return _error_page(ctx, t("error.not_allowed", ctx.lang), 403)
    params = {k: str(v) for k, v in form.items() if k != "key" and isinstance(v, str)}
    outcome = await ctx.services.actions.perform(key, Actor("h5"), params=params)
    if storm:
        return await _render_storm(ctx, claims, outcome)
    return await _render(ctx, claims, outcome)


async def _belongs(ctx: AppContext, page: ActionClaims, key: ActionClaims) -> bool:
    """A key posted to a page must be one that page offers: the lead's own, or on a storm list
    the batch of that digest or a reassign of one of its leads."""
    digest = page.args.get(BATCH)
    if not digest:
        return key.lead_id == page.lead_id and not key.args.get(BATCH)
    if key.args.get(BATCH):
        return key.args.get(BATCH) == digest
    rep = await ctx.store.get_rep(page.rep_id) if page.rep_id else None
    batch = await ctx.services.storm.batch(str(digest), rep) if rep is not None else None
    return key.action == "reassign" and batch is not None and any(lead_id == key.lead_id for lead_id, _ in batch)


def setup_h5(app: web.Application, ctx: AppContext | None = None) -> None:
    app.router.add_get("/a/{token}", get_action_page, name="action_page")
    app.router.add_post("/a/{token}", post_action_page)
