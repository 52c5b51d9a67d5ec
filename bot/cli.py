"""The `leadbot` command line. Every command takes --config FILE, else $LEADBOT_CONFIG, else
./config.toml when present, else built-in defaults (a SQLite file in the current folder)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from leadbot.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from crm.csv_files import CsvRows

# Exit codes scripts can trust (the README's table): everything done; done in part, or the thing
# asked about does not exist; the command line or the configuration is wrong (nothing was done).
EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2

# The command line's own words come from the catalogue, in [server] language (or
# LEADBOT_SERVER_LANGUAGE) like everything else leadbot says; _settings() records it on the
# click context, so a word printed before the configuration is read is in the default language.
_LANG_KEY = "leadbot.lang"


def _lang() -> str:
    from leadbot.i18n import DEFAULT_LANGUAGE

    ctx = click.get_current_context(silent=True)
    return (ctx.meta.get(_LANG_KEY) if ctx is not None else None) or DEFAULT_LANGUAGE


def _t(message: str, **params: object) -> str:
    from leadbot.i18n import t

    return t(message, _lang(), **params)


config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                             help="Config file (default: $LEADBOT_CONFIG, else ./config.toml, else built-in defaults).")


def _settings(config_path: str | None) -> Settings:
    try:
        settings = load_settings(config_path)
    except ConfigError as e:
        click.echo(str(e), err=True)
        sys.exit(EXIT_USAGE)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_LANG_KEY] = settings.server.language
    return settings


def _logging(settings: Settings) -> None:
    from leadbot.logs import configure_logging, secrets_of

    configure_logging(settings.server.log_format, settings.server.log_level, secrets=secrets_of(settings))


async def _upgrade(settings: Settings) -> str:
    from store.db import create_engine
    from store.migrate import current_revision, upgrade

    engine = create_engine(settings.database.url)
    try:
        await upgrade(engine)
        return await current_revision(engine)
    finally:
        await engine.dispose()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="leadbot")
def main() -> None:
    """leadbot: lead cards, one-tap actions and SLA escalations for sales teams on WeCom and DingTalk."""


@main.command()
@config_option
@click.option("--host", default=None, help="Override [server] host.")
@click.option("--port", type=int, default=None, help="Override [server] port.")
def serve(config_path: str | None, host: str | None, port: int | None) -> None:
    """Bring the schema up to date and serve the callback, intake and action-page routes."""
    from bot.app import create_app, for_serving
    from bot.context import CTX
    from bot.api.serving import serve_until_signalled

    settings = _settings(config_path)
    _logging(settings)
    try:
        revision = asyncio.run(_upgrade(settings))
    except Exception as e:
        click.echo(_t("cli.db_cannot_prepare", where=settings.database.url.split('@')[-1], error=e), err=True)
        sys.exit(EXIT_PARTIAL)
    host = host or settings.server.host
    port = port or settings.server.port
    platforms = [_t(f"cli.platform.{p}") for p in ("wecom", "dingtalk") if getattr(settings, p) is not None]
    click.echo(_t("cli.serving", host=host, port=port, revision=revision, source=settings.source,
                  platforms=_t("sep.list").join(platforms) or _t("value.none")), err=True)
    for line in asyncio.run(_with_engine(settings, lambda e: time_statement(e, settings))):
        click.echo(line, err=True)
    app = for_serving(create_app(settings))
    log = app[CTX].log
    # Not web.run_app: its runner cannot bound how long a client takes to send its headers
    # (bot.api.serving explains why and how).
    asyncio.run(serve_until_signalled(
        app, host, port, header_timeout=settings.server.read_timeout_seconds,
        on_expire=lambda peer: log.info("http.header_timeout", peer=str(peer)[:64])))


@main.command()
@config_option
@click.option("--port", type=int, default=8080, show_default=True, help="Port of the sandbox page.")
def demo(config_path: str | None, port: int) -> None:
    """Start the sandbox: leadbot plus simulated WeCom and DingTalk, in your browser."""
    try:
        from sandbox.demo import run_demo
    except ImportError:
        click.echo("the sandbox is not part of this build yet (issue 10); `leadbot serve` runs leadbot itself",
                   err=True)
        sys.exit(EXIT_PARTIAL)
    run_demo(config_path, port)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: str | None) -> None:
    """Apply every pending migration."""
    settings = _settings(config_path)
    try:
        revision = asyncio.run(_upgrade(settings))
    except Exception as e:
        click.echo(_t("cli.db_upgrade_failed", error=e), err=True)
        sys.exit(EXIT_PARTIAL)
    click.echo(_t("cli.db_revision", revision=revision))


def read_csv(path: Path) -> "CsvRows":
    """UTF-8 (with or without Excel's BOM), else GB18030, which Chinese Excel exports often are.
    Broken rows (an unclosed quote, too many fields) are left out and listed in ``.problems``."""
    from crm.csv_files import CsvFileError, read_csv_rows

    try:
        return read_csv_rows(path)
    except CsvFileError as e:
        click.echo(str(e), err=True)
        sys.exit(EXIT_USAGE)


def _report_problems(rows: "CsvRows") -> None:
    for p in rows.problems:
        click.echo(_t("cli.row_rejected", line=p.line, row_id="", reason=p.reason))


def _with_progress(label: str, total: int, work: Callable[[Callable[[int], None]], Any]) -> Any:
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True) as bar:
        return work(bar.update)


@main.command("import")
@click.argument("kind", type=click.Choice(["customers", "reps"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
def import_(kind: str, file: Path, config_path: str | None) -> None:
    """Import customers or reps from a CSV file (columns: see README)."""
    from store.db import create_engine
    from store.migrate import upgrade
    from crm.sql_store import SqlCRMStore

    settings = _settings(config_path)
    rows = read_csv(file)

    async def run(progress: Callable[[int], None]) -> Any:
        engine = create_engine(settings.database.url)
        try:
            await upgrade(engine)
            store = SqlCRMStore(engine)
            if kind == "reps":
                return await store.import_reps(rows, progress=progress)
            return await store.import_customers(rows, progress=progress)
        finally:
            await engine.dispose()

    summary = _with_progress(_t("cli.progress.import", kind=_t(f"cli.kind.{kind}")), len(rows),
                             lambda p: asyncio.run(run(p)))
    rejected = len(summary.rejected) + len(rows.problems)
    click.echo(_t("cli.import_summary", kind=_t(f"cli.kind.{kind}"), created=summary.created,
                  updated=summary.updated, rejected=rejected, rows=_t("cli.rows", n=len(rows) + len(rows.problems))))
    _report_problems(rows)
    for r in summary.rejected:
        click.echo(_t("cli.row_rejected", line=r.line, row_id=_t("cli.row_key", row_id=r.key) if r.key else "",
                      reason=r.reason))
    for note in summary.notes:
        click.echo(f"  {note}")
    if rejected:
        sys.exit(EXIT_PARTIAL)


@main.command()
@click.argument("input_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_csv", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the pairs (id_a,id_b,score,reason).")
@click.option("--suggestions", "suggestions_csv", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the possible duplicates under the automatic bar, for a person to confirm.")
@config_option
def dedupe(input_csv: Path, out_csv: Path, suggestions_csv: Path | None, config_path: str | None) -> None:
    """Find every pair of rows in a customer CSV that are the same customer."""
    try:
        from identity.dedupe import run_dedupe
    except ImportError:
        click.echo("dedupe is not part of this build yet (issue 6)", err=True)
        sys.exit(EXIT_PARTIAL)
    from identity.dedupe import CSV_COLUMNS

    _settings(config_path)
    rows = read_csv(input_csv)
    known = {c.strip().lower() for c in rows.fieldnames} & (set(CSV_COLUMNS) - {"id"})
    if not known:
        click.echo(_t("cli.dedupe_no_columns", file=input_csv, expected=", ".join(CSV_COLUMNS[1:]),
                      header=", ".join(rows.fieldnames) or _t("value.none")), err=True)
        sys.exit(EXIT_USAGE)
    stats = _with_progress(_t("cli.progress.compare"), len(rows),
                           lambda p: run_dedupe(rows, out_csv, p, suggestions_path=suggestions_csv))
    click.echo(_t("cli.dedupe_summary", rows=_t("cli.rows", n=stats.rows), pairs=_t("cli.pairs", n=stats.pairs),
                  clusters=_t("cli.clusters", n=stats.clusters), out=out_csv, strong=stats.direct_strong,
                  weak=stats.direct_weak, largest=stats.largest_cluster))
    if suggestions_csv is not None:
        click.echo(_t("cli.suggested", n=stats.suggested, out=suggestions_csv))
    _report_problems(rows)
    if rows.problems:
        sys.exit(EXIT_PARTIAL)


async def _with_engine(settings: Settings, work: Callable[[Any], Any]) -> Any:
    from store.db import create_engine
    from store.migrate import upgrade

    engine = create_engine(settings.database.url)
    try:
        await upgrade(engine)
        return await work(engine)
    finally:
        await engine.dispose()


@main.command()
@click.option("--retry-dead", "retry_dead", is_flag=True, help="Put dead messages back in the queue.")
@click.option("--id", "ids", type=int, multiple=True, help="With --retry-dead: only these message ids.")
@click.option("--limit", type=int, default=20, show_default=True, help="Rows listed per state.")
@config_option
def outbox(retry_dead: bool, ids: tuple[int, ...], limit: int, config_path: str | None) -> None:
    """List pending and dead outbound messages (and retry dead ones)."""
    from notifications.cli_report import outbox_report, outbox_requeue_dead

    settings = _settings(config_path)
    if retry_dead:
        n = asyncio.run(_with_engine(settings, lambda e: outbox_requeue_dead(e, list(ids) or None)))
        click.echo(_t("cli.requeued", n=n))
    click.echo(asyncio.run(_with_engine(settings, lambda e: outbox_report(e, limit, settings.calendar))))


@main.group()
def reps() -> None:
    """Rep maintenance (import them with `leadbot import reps`)."""


@reps.command("leave")
@click.argument("rep_id")
@config_option
def reps_leave(rep_id: str, config_path: str | None) -> None:
    """Mark a rep as left: their open leads are re-routed, new owners and their manager told."""
    from bot.offline import offline_context

    settings = _settings(config_path)

    async def run() -> tuple[str, int] | None:
        async with offline_context(settings) as ctx:
            rep = await ctx.store.rep_by_external_id(rep_id)
            if rep is None and rep_id.isdigit():
                rep = await ctx.store.get_rep(int(rep_id))
            if rep is None:
                return None
            await ctx.store.set_rep_status(rep.id, "left", "cli")
            return rep.name, await ctx.services.flow.rep_left(rep.id, "cli")

    result = asyncio.run(run())
    if result is None:
        click.echo(_t("cli.no_rep", rep_id=repr(rep_id)), err=True)
        sys.exit(EXIT_PARTIAL)
    click.echo(_t("cli.rep_left", name=result[0], n=result[1]))


@reps.command("sync")
@click.option("--platform", type=click.Choice(["wecom", "dingtalk", "all"]), default="all", show_default=True,
              help="Which directory to read (all: every configured platform).")
@click.option("--root-dept", "root_dept", type=int, default=None,
              help="Only this department and the ones below it (default: the whole directory).")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@config_option
def reps_sync(platform: str, root_dept: int | None, dry_run: bool, config_path: str | None) -> None:
    """Sync teams and reps from the WeCom / DingTalk directory (department members): departments
    become teams, department leaders their managers, people who left are marked left and their open
    leads re-routed. Weight, capacity, regions, product lines and delivery set by hand are kept."""
    from bot.platforms.directory import sync_directory
    from bot.offline import offline_context

    settings = _settings(config_path)
    configured = [p for p in ("wecom", "dingtalk") if getattr(settings, p) is not None]
    wanted = configured if platform == "all" else [platform]
    missing = [p for p in wanted if p not in configured]
    if missing:
        click.echo(_t("cli.sync_platform_missing", platform=missing[0]), err=True)
        sys.exit(EXIT_USAGE)
    if not wanted:
        click.echo(_t("cli.sync_no_platform"), err=True)
        sys.exit(EXIT_USAGE)
    if root_dept is not None and len(wanted) > 1:
        raise click.UsageError(_t("cli.sync_root_dept"))

    async def run() -> Any:
        await _upgrade(settings)
        async with offline_context(settings) as ctx:
            return await sync_directory(ctx, platforms=wanted, root_dept=root_dept, dry_run=dry_run,
                                        progress=lambda line: click.echo(line, err=True))

    try:
        report = asyncio.run(run())
    except Exception as e:  # the directories are read in full before the first write
        click.echo(_t("cli.sync_failed", error=f"{type(e).__name__}: {e}"), err=True)
        sys.exit(EXIT_PARTIAL)
    for line in report.lines():
        click.echo(line)


async def time_statement(engine: Any, settings: Settings) -> list[str]:
    """Which calendar is in force and, outside working hours, what is held until when."""
    from store.outbox import OutboxRepo
    from leadbot.clock import SystemClock
    from leadbot.time_text import calendar_line, now_line
    from notifications.quiet_hours import HELD_REASON, time_policy_line

    held, _, _ = await OutboxRepo(engine).held(HELD_REASON)
    lang = settings.server.language
    return [calendar_line(settings, "calendar" in settings.configured, lang),
            now_line(settings, SystemClock().now(), held, lang), time_policy_line(settings, lang)]


@main.command()
@click.argument("lead_id", type=int)
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None, help="Default: [server] language.")
@config_option
def explain(lead_id: int, lang: str | None, config_path: str | None) -> None:
    """Why a lead was routed where it was: every candidate, every skip reason, the winner."""
    from routing.explain_text import explain_with_record

    settings = _settings(config_path)
    text, found = asyncio.run(_with_engine(settings, lambda e: explain_with_record(
        e, lead_id, lang or settings.server.language, calendar=settings.calendar)))
    click.echo(text, err=not found)
    if not found:
        sys.exit(EXIT_PARTIAL)


@main.group()
def crm() -> None:
    """CRM bridge: full resync with the CRM named in [crm_bridge] (docs/crm_bridge.md)."""


def _crm_settings(config_path: str | None) -> Any:
    settings = _settings(config_path)
    if settings.crm_bridge is None:
        click.echo(_t("cli.crm_off"), err=True)
        sys.exit(EXIT_USAGE)
    return settings


@crm.command("pull")
@config_option
def crm_pull(config_path: str | None) -> None:
    """Page through [crm_bridge] pull_url and upsert every customer and lead (no echo back)."""
    import aiohttp

    from crm_bridge.inbound import CrmInbound
    from crm_bridge.resync import PullError, http_fetcher, pull

    settings = _crm_settings(config_path)
    cfg = settings.crm_bridge
    if not cfg.pull_url:
        click.echo(_t("cli.crm_no_pull_url"), err=True)
        sys.exit(EXIT_USAGE)
    bind = http_fetcher(cfg.pull_url, cfg.pull_token, cfg.page_size)

    with click.progressbar(length=0, label=_t("cli.progress.pull"), file=sys.stderr, show_pos=True) as bar:
        def on_total(n: int) -> None:
            bar.length = n

        async def work(engine: Any) -> Any:
            from leadbot.clock import SystemClock

            inbound = CrmInbound(engine, SystemClock(), cfg.owners, settings.pipeline.stage_names)
            async with aiohttp.ClientSession() as http:
                return await pull(inbound, bind(http), progress=bar.update, on_total=on_total)

        try:
            summary = asyncio.run(_with_engine(settings, work))
        except PullError as e:
            click.echo("\n" + _t("cli.crm_pull_failed", error=e), err=True)
            sys.exit(EXIT_PARTIAL)
    click.echo(_t("cli.crm_pulled", created=summary.created, updated=summary.updated, unchanged=summary.unchanged,
                  rejected=len(summary.rejected), pages=_t("cli.pages", n=summary.pages)))
    for kind, ext, why in summary.rejected:
        click.echo(_t("cli.crm_rejected", kind=kind, ref=ext or "?", why=why))


@crm.command("push")
@click.option("--since", "since", required=True, help="ISO time, e.g. 2026-11-01T00:00:00+08:00 (naive = UTC).")
@config_option
def crm_push(since: str, config_path: str | None) -> None:
    """Re-emit a snapshot event for every customer and lead changed since --since; the running
    server delivers them (in order, signed) to every webhook URL."""
    from datetime import datetime, timezone

    from crm_bridge.resync import count_changed_since, push_since
    from leadbot.clock import SystemClock

    settings = _crm_settings(config_path)
    try:
        when = datetime.fromisoformat(since)
    except ValueError:
        raise click.BadParameter(_t("cli.crm_bad_since", since=repr(since)), param_hint="--since") from None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    urls = settings.crm_bridge.webhook_urls
    if not urls:
        click.echo(_t("cli.crm_no_webhooks"), err=True)
        sys.exit(EXIT_USAGE)

    async def work(engine: Any) -> int:
        total = await count_changed_since(engine, when)
        with click.progressbar(length=total, label=_t("cli.progress.push"), file=sys.stderr,
                               show_pos=True) as bar:
            return await push_since(engine, SystemClock(), urls, when, progress=bar.update)

    n = asyncio.run(_with_engine(settings, work))
    click.echo(_t("cli.crm_pushed", n=n, urls=_t("cli.webhook_urls", n=len(urls))))


if __name__ == "__main__":
    main()


@main.group()
def duty() -> None:
    """Who takes leads outside working hours (值班), per team: show, set or clear the override."""


@duty.command("show")
@config_option
def duty_show(config_path: str | None) -> None:
    """Every team's on-duty rotation: the manager's override, else [duty] in the config."""
    settings = _settings(config_path)

    async def work(engine: Any) -> list[str]:
        from routing.duty import ALL_TEAMS, DutyStore, in_turn, turn
        from crm.sql_store import SqlCRMStore
        from leadbot.clock import SystemClock
        from leadbot.time_policy import stamp
        from leadbot.workcal import calendar_of

        clock = SystemClock()
        store, duties, cal = SqlCRMStore(engine, clock), DutyStore(engine, clock), calendar_of(settings.calendar)
        lines = []
        teams = [ALL_TEAMS, *[t.name for t in await store.list_teams()], *settings.duty.teams]
        for team in dict.fromkeys(teams):
            override = await duties.get(team)
            names = list(override.reps) if override else list(settings.duty.rotation(team))
            if not names and team == ALL_TEAMS:
                continue
            source = (_t("cli.duty_set_by", who=override.set_by, at=stamp(override.at, cal)) if override
                      else _t("cli.duty_from_config"))
            ordered = in_turn(names, turn(cal, clock.now(), len(names)))
            label = team or _t("cli.duty_no_team")
            lines.append(_t("cli.duty_line", team=label, names=_t("sep.list").join(ordered), source=source)
                         if names else _t("cli.duty_nobody", team=label))
        return lines

    for line in asyncio.run(_with_engine(settings, work)):
        click.echo(line)


@duty.command("set")
@click.argument("team")
@click.argument("rep_ids", nargs=-1, required=True)
@config_option
def duty_set(team: str, rep_ids: tuple[str, ...], config_path: str | None) -> None:
    """Put REP_IDS (rep ids, in turn) on duty for TEAM ("" = rules without a team)."""
    settings = _settings(config_path)

    async def work(engine: Any) -> list[str]:
        from routing.duty import DutyStore
        from crm.sql_store import SqlCRMStore
        from leadbot.clock import SystemClock

        clock = SystemClock()
        store = SqlCRMStore(engine, clock)
        missing = [r for r in rep_ids if await store.rep_by_external_id(r) is None]
        if not missing:
            await DutyStore(engine, clock).set(team, rep_ids, "cli")
            await store.audit("cli", "duty.set", "team", team, {"reps": list(rep_ids)})
        return missing

    missing = asyncio.run(_with_engine(settings, work))
    if missing:
        click.echo(_t("cli.no_rep", rep_id=_t("sep.list").join(missing)), err=True)
        sys.exit(EXIT_PARTIAL)
    click.echo(_t("cli.duty_set", team=team or _t("cli.duty_no_team"), names=_t("sep.list").join(rep_ids)))


@duty.command("clear")
@click.argument("team")
@config_option
def duty_clear(team: str, config_path: str | None) -> None:
    """Drop TEAM's override: [duty] in the config applies again."""
    settings = _settings(config_path)

    async def work(engine: Any) -> bool:
        from routing.duty import DutyStore
        from leadbot.clock import SystemClock

        return await DutyStore(engine, SystemClock()).clear(team)

    cleared = asyncio.run(_with_engine(settings, work))
    click.echo(_t("cli.duty_cleared" if cleared else "cli.duty_had_none", team=team or _t("cli.duty_no_team")))
