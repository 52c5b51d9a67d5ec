"""Every benchmark in bench/, one after another, in quick mode by default:

    .venv/bin/python bench/run_all.py            # quick flags (a few minutes)
    .venv/bin/python bench/run_all.py --full     # each bench's own defaults (much longer)
    .venv/bin/python bench/run_all.py --only ingest,routing

Prints one JSON document ({"benches": {name: result}}) and then, after a line "---", a markdown
table to paste into the README. A bench that fails is reported with its error; the others still run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent

# name -> (script, quick flags, full flags)
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "ingest": ("ingest_bench.py", ["--quick"], []),
    "lead_to_card": ("lead_to_card_bench.py", ["--quick"], ["--rate", "50", "--seconds", "60"]),
    "identity": ("identity_bench.py", ["--quick"], []),
    "routing": ("routing_bench.py", ["--leads", "300"], []),
    "timer": ("timer_bench.py", ["--open", "20000", "--repeat", "3"], []),
    "delivery": ("delivery_bench.py", ["--messages", "500"], []),
    # PostgreSQL only (LEADBOT_BENCH_DATABASE_URL); prints "skipped" without it.
    "scale_out": ("scale_out_bench.py", ["--quick"], []),
}


def run_one(script: str, flags: list[str], timeout: float) -> dict[str, Any]:
    path = BENCH / script
    if not path.exists():
        return {"error": f"{script} is missing"}
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, str(path), *flags], capture_output=True, text=True, timeout=timeout,
                              cwd=BENCH.parent)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-600:]}"}
    text = proc.stdout.strip()
    try:
        result = json.loads(text)
    except ValueError:
        # some benches print progress before their JSON: take the last JSON object
        start = text.rfind("\n{")
        try:
            result = json.loads(text[start + 1:] if start >= 0 else text)
        except ValueError:
            return {"error": "no JSON in the output", "stdout_tail": text[-400:]}
    return {"seconds": round(time.monotonic() - started, 1), "result": result}


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def headline(name: str, result: dict[str, Any]) -> tuple[str, str]:
    """(measured, against its baseline/target) for the table; generic when the shape is unknown."""
    if "error" in result:
        return "error", result["error"][:80]
    r = result["result"]
    if name == "ingest":
        s = r["summary"]
        return (f"{s['leadbot_per_s']:.0f} callbacks/s; p50 {s['p50_ms_at_rate']} ms, p99 {s['p99_ms_at_rate']} ms "
                f"at {s['target']['rate']:.0f}/s",
                f"{s['ratio']:.0%} of the bare verify+decrypt handler ({s['baseline_per_s']:.0f}/s); "
                f"per-request commits {s['per_request_ratio']:.0%}")
    if name == "lead_to_card":
        s = r["summary"]
        return (f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms at {s['rate']}/s for {s['seconds']} s",
                f"target p99 < {s['target_p99_ms']} ms; {s['cards']} cards for {s['leads']} leads")
    if name == "scale_out":
        if "skipped" in r:
            return "skipped", r["skipped"]
        s, n = r["summary"], r["params"]["processes"]
        return (f"{n} processes: {s['scaled_leads_per_s']} leads/s to first card (p50 {s['p50_ms_n']} ms, "
                f"p99 {s['p99_ms_n']} ms)",
                f"{s['throughput_ratio']}× the 1-process baseline in the same run ({s['baseline_leads_per_s']} "
                f"leads/s, p50 {s['p50_ms_1']} ms, p99 {s['p99_ms_1']} ms); paired rounds {s['pair_ratios']}")
    flat = {k: v for k, v in r.items() if isinstance(v, (int, float, str, bool))} if isinstance(r, dict) else {}
    summary = r.get("summary") if isinstance(r, dict) else None
    if isinstance(summary, dict):
        flat = {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))} or flat
    telling = ("ratio", "per_s", "p99", "p50", "_ms", "lost", "late")
    picked = [k for k in flat if any(t in k for t in telling) and not isinstance(flat[k], str)]
    keys = (picked or list(flat))[:5]
    shown = ", ".join(f"{k}={flat[k]}" for k in keys)
    return shown or "see JSON", ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="each bench's full defaults instead of quick flags")
    parser.add_argument("--only", default="", help="comma-separated names: " + ",".join(BENCHES))
    parser.add_argument("--timeout", type=float, default=1800.0, help="per bench, seconds")
    args = parser.parse_args()
    names = [n for n in (args.only.split(",") if args.only else BENCHES) if n]
    out: dict[str, Any] = {}
    for name in names:
        script, quick, full = BENCHES[name]
        print(f"running {name} ...", file=sys.stderr, flush=True)
        out[name] = run_one(script, full if args.full else quick, args.timeout)
    print(json.dumps({"mode": "full" if args.full else "quick", "benches": out}, ensure_ascii=False, indent=2))
    print("---")
    print("| bench | result | against |")
    print("|---|---|---|")
    for name in names:
        measured, against = headline(name, out[name])
        print(f"| {name} | {measured} | {against} |")


if __name__ == "__main__":
    main()
