"""The daily manager digest: what happened since the previous digest, what is overdue or stuck,
how fast each rep answers, and a small PNG chart where a picture says it faster than a table."""

from __future__ import annotations

import io
import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Sequence

from leadbot.i18n import t as text
from crm.reports import ReportStore, TeamRef
from leadbot.durations import parse_duration
from leadbot.settings import Settings
from scheduler.ladder import sla_add, sla_elapsed, stage_limit, work_calendar, working_limit

# Fonts that carry CJK glyphs, in order of preference (fc-list :lang=zh names).
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
             "WenQuanYi Zen Hei", "Microsoft YaHei", "SimHei", "PingFang SC", "AR PL UMing CN",
             "Droid Sans Fallback")


@dataclass(frozen=True, slots=True)
class RepResponse:
    rep_id: int | None
    name: str
    leads: int
    median_seconds: float
    max_seconds: float


@dataclass(frozen=True, slots=True)
class DigestReport:
    day: date  # local date of the digest
    window_start: datetime
    window_end: datetime
    new: int
    claimed: int
    overdue: int  # open, untouched, past the escalation step of the ladder
    silent: int  # open, no activity for sla.silence_flag
    stuck_by_stage: tuple[tuple[str, int], ...]  # pipeline order first
    first_response: tuple[RepResponse, ...]  # slowest median first
    working_time: bool  # response times in working time
    team_id: int | None = None
    team_name: str = ""
    manager_id: int | None = None

    @property
    def stuck_total(self) -> int:
        return sum(n for _, n in self.stuck_by_stage)


def digest_instant(day: date, settings: Settings) -> datetime:
    hh, _, mm = settings.sla.digest_time.partition(":")
    local = datetime.combine(day, time(int(hh), int(mm)), settings.calendar.tz)
    return local.astimezone(timezone.utc)


def next_digest_at(now: datetime, settings: Settings) -> datetime:
    """The next digest instant at or after now, on a working day."""
    cal = work_calendar(settings.calendar)
    day = cal.local_date(now)
    for _ in range(400):
        at = digest_instant(day, settings)
        if cal.is_workday(day) and at >= now:
            return at
        day += timedelta(days=1)
    raise ValueError("no working day within a year for the digest")


def previous_digest_at(now: datetime, settings: Settings) -> datetime:
    """The last digest instant strictly before now on a working day: the digest window starts
    there, so Monday's digest covers the weekend and nothing falls between two digests."""
    cal = work_calendar(settings.calendar)
    day = cal.local_date(now)
    for _ in range(400):
        at = digest_instant(day, settings)
        if cal.is_workday(day) and at < now:
            return at
        day -= timedelta(days=1)
    return now - timedelta(days=1)


async def build_digest(reports: ReportStore, settings: Settings, now: datetime, *,
                       team: TeamRef | None = None, start: datetime | None = None) -> DigestReport:
    start = start or previous_digest_at(now, settings)
    overdue_before = sla_add(now, -parse_duration(settings.sla.first_touch_escalate), settings)
    silent_before = now - parse_duration(settings.sla.silence_flag)
    # Stuck as the stage alerts count it (scheduler.ladder.plan_stagnation): in the team's working
    # time when sla.working_time, so the digest and the alert agree on who is stuck.
    counting = settings.replace(calendar=settings.calendar.for_team(team.name)) if team else settings

    def entered_before(limit: timedelta) -> datetime:
        return sla_add(now, -working_limit(limit, counting), counting)

    stuck_before = {}
    for stage in (*settings.pipeline.stage_names, *settings.sla.stage_limits):
        limit = stage_limit(stage, settings)
        # far past: stage turned off; its leads are never stuck
        stuck_before[stage] = entered_before(limit) if limit else datetime(1970, 1, 1, tzinfo=timezone.utc)
    default = stage_limit("\0no such stage", settings)
    rows = await reports.digest_rows(start=start, end=now, overdue_before=overdue_before,
                                     silent_before=silent_before, stuck_before=stuck_before,
                                     stuck_default_before=entered_before(default) if default else None,
                                     team_id=team.id if team else None)
    per_rep: dict[int | None, list[float]] = {}
    for r in rows.responses:
        per_rep.setdefault(r.owner_id, []).append(
            max(0.0, sla_elapsed(r.assigned_at, r.responded_at, settings).total_seconds()))
    responses = sorted(
        (RepResponse(rep, rows.rep_names.get(rep, "") if rep is not None else "", len(xs),
                     statistics.median(xs), max(xs)) for rep, xs in per_rep.items()),
        key=lambda x: (-x.median_seconds, x.rep_id or 0))
    order = {s: i for i, s in enumerate(settings.pipeline.stage_names)}
    stuck = tuple(sorted(rows.stuck_by_stage.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
    return DigestReport(day=work_calendar(settings.calendar).local_date(now), window_start=start,
                        window_end=now, new=rows.new, claimed=rows.claimed, overdue=rows.overdue,
                        silent=rows.silent, stuck_by_stage=stuck, first_response=tuple(responses),
                        working_time=settings.sla.working_time, team_id=team.id if team else None,
                        team_name=team.name if team else "", manager_id=team.manager_id if team else None)


# ---- the chart -------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """A font family with Chinese glyphs installed on this host, else None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _latin(text: str) -> str:
    """Pinyin for hosts without a CJK font: 张伟 -> Zhang Wei, 需求确认 -> Xu Qiu Que Ren."""
    if text.isascii():
        return text
    from pypinyin import lazy_pinyin

    return " ".join(p.capitalize() for p in lazy_pinyin(text))


def render_chart(report: DigestReport, language: str = "zh") -> bytes:
    """A 3-panel PNG: the day's counts, stuck leads by stage, median first response per rep.
    Chinese labels when a CJK font is installed, else English labels and pinyin names."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    font = cjk_font()
    lang = "zh" if (language == "zh" and font) else "en"
    t = {k: text("chart." + k, lang) for k in ("stuck", "resp", "counts", "new", "claimed", "overdue", "silent",
                                                "nobody")}
    t["none"] = text("value.none", lang)
    name = (lambda s: s) if font else _latin
    rc = {"font.family": [font, "DejaVu Sans"] if font else ["DejaVu Sans"]}

    import matplotlib

    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(9, 3.2), dpi=100)
        FigureCanvasAgg(fig)
        ax1, ax2, ax3 = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1.3, 1.5]})
        keys = ("new", "claimed", "overdue", "silent")
        values = [getattr(report, k) for k in keys]
        ax1.bar([t[k] for k in keys], values, color=["#4e79a7", "#59a14f", "#e15759", "#bab0ac"])
        ax1.set_title(t["counts"])
        for i, v in enumerate(values):
            ax1.annotate(str(v), (i, v), ha="center", va="bottom", fontsize=8)
        ax1.tick_params(axis="x", labelsize=8, rotation=30)

        stuck = report.stuck_by_stage or ((t["none"], 0),)
        ax2.barh([name(s) for s, _ in stuck][::-1], [n for _, n in stuck][::-1], color="#f28e2b")
        ax2.set_title(t["stuck"])
        ax2.tick_params(axis="y", labelsize=8)

        reps = report.first_response[:10] or ()
        labels = [name(r.name) or (t["nobody"] if r.rep_id is None else text("chart.rep", lang, rep_id=r.rep_id)) for r in reps]
        ax3.barh(labels[::-1] or [t["none"]], [r.median_seconds / 60 for r in reps][::-1] or [0], color="#76b7b2")
        ax3.set_title(t["resp"])
        ax3.tick_params(axis="y", labelsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    return buf.getvalue()


def digest_teams(teams: Sequence[TeamRef]) -> list[TeamRef | None]:
    """One digest per team with a manager; the whole company when no team has one."""
    managed = [t for t in teams if t.manager_id is not None]
    return list(managed) if managed else [None]
