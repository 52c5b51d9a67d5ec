"""值班: who takes leads outside working hours, shown to anyone and set by a team's manager
("值班" shows it; "值班 张三 李四" sets a rotation for the sender's team; "值班 清除" goes back to
the config's [duty]). The CLI (`leadbot duty`) does the same for any team."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from leadbot.i18n import t
from store import dto
from store.actors import rep_of_actor
from routing.duty import DutyStore, in_turn, turn
from leadbot.workcal import calendar_of

if TYPE_CHECKING:
    from bot.context import AppContext

SETTERS = ("manager", "admin")


async def on_duty_names(ctx: "AppContext", team: str) -> tuple[list[str], str]:
    """(rep external ids in turn, starting with the current period's, and who set them)."""
    override = await DutyStore(ctx.engine, ctx.clock).get(team)
    names = list(override.reps) if override is not None else list(ctx.settings.duty.rotation(team))
    cal = calendar_of(ctx.settings.calendar, team)
    return in_turn(names, turn(cal, ctx.clock.now(), len(names))), (override.set_by if override else "")


async def answer_duty(ctx: "AppContext", rep: dto.Rep, args: Sequence[str], lang: str) -> str:
    team = rep.team or ""
    label = team or t("duty.all_teams", lang)
    store = DutyStore(ctx.engine, ctx.clock)
    if args:
        if rep.role not in SETTERS:
            return t("duty.managers_only", lang)
        if len(args) == 1 and args[0].lower() in (t("cmd.duty_clear", "zh"), t("cmd.duty_clear", "en")):
            await store.clear(team)
            await ctx.store.audit(f"rep:{rep.id}", "duty.cleared", "team", team, {})
            return t("duty.cleared", lang, team=label)
        reps = [r for r in await ctx.store.list_reps(status="active")]
        chosen, unknown = [], []
        for name in args:
            match = next((r for r in reps if name in (r.name, r.external_id) and (not team or r.team == team)), None)
            if match is None:
                unknown.append(name)
            else:
                chosen.append(match)
        if unknown:
            return t("duty.unknown", lang, names=t("sep.list", lang).join(unknown))
        await store.set(team, [r.external_id for r in chosen], f"rep:{rep.id}")
        await ctx.store.audit(f"rep:{rep.id}", "duty.set", "team", team, {"reps": [r.external_id for r in chosen]})
        return t("duty.set", lang, team=label, names=t("sep.list", lang).join(r.name for r in chosen))
    ids, set_by = await on_duty_names(ctx, team)
    if not ids:
        return t("duty.none", lang, team=label)
    by_id = {r.external_id: r.name for r in await ctx.store.list_reps()}
    names = [by_id.get(i, i) for i in ids]
    setter_id = rep_of_actor(set_by)
    if setter_id is not None:
        setter = await ctx.store.get_rep(setter_id)
        source = t("duty.by", lang, who=setter.name if setter else set_by)
    else:
        source = t("duty.by", lang, who=set_by) if set_by else t("duty.by_config", lang)
    return t("duty.show", lang, team=label, names=t("sep.list", lang).join(names), now=names[0], source=source)
