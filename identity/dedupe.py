"""Batch de-duplication of a customer export: `leadbot dedupe INPUT.csv --out PAIRS.csv`.

Every row is indexed first (so frequencies, and therefore the caps on switchboards and common
names, are those of the whole file), then each row is compared with the rows after it that share
a key. With 2,000 candidate pairs or more the Fellegi–Sunter weights are re-fitted by EM on the
file's own comparisons (no labels); a smaller file is judged with the shipped weights live
matching uses. Pairs sharing a strong identifier, or whose probability reaches `auto_threshold`,
are judged the same customer; clusters are closed with union-find and every pair inside a
cluster is written (id_a, id_b, score, reason); a pair joined only through others carries the
weakest link on the strongest path between them. Pairs between `possible_threshold` and the
automatic bar are suggestions (`--suggestions`), each with its reason.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from identity.index import IdentityIndex
from identity import reasons
from identity.matcher import (CONFLICT_CODES, DEFAULT_CONFIG, Evidence, MatchConfig, Record, build_record,
                                         mask_value)
from identity.scoring import FSModel, fit_em

CSV_COLUMNS = ("id", "name", "phone", "email", "company", "title", "wechat_unionid",
               "wecom_external_userid", "id_number", "address", "city")
_MULTI = re.compile(r"[;；,，|、\s]+")


@dataclass(frozen=True, slots=True)
class Pair:
    id_a: str
    id_b: str
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class DedupeStats:
    rows: int
    pairs: int
    clusters: int
    largest_cluster: int
    direct_strong: int
    direct_weak: int
    out: str = ""
    suggested: int = 0  # pairs under the automatic bar, for a person to confirm

    def __str__(self) -> str:
        where = f" to {self.out}" if self.out else ""
        return (f"{self.rows} rows: {self.pairs} pairs in {self.clusters} clusters written{where} "
                f"(direct matches: {self.direct_strong} on a strong identifier, {self.direct_weak} on "
                f"name/company/address evidence; largest cluster {self.largest_cluster})")

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _clean(row: Mapping[str, Any]) -> dict[str, str]:
    return {(k or "").strip().lower(): ("" if v is None else str(v).strip()) for k, v in row.items() if k is not None}


def _multi(value: str) -> list[str]:
    return [v for v in _MULTI.split(value or "") if v]


def record_from_row(rid: Any, row: Mapping[str, Any]) -> Record:
    """Features of one CSV row (the customer CSV columns of the README; phone may hold several numbers)."""
    row = _clean(row)
    return build_record(
        rid, name=row.get("name", ""), company=row.get("company", ""), phones=row.get("phone", ""),
        emails=_multi(row.get("email", "")), unionids=_multi(row.get("wechat_unionid", "")),
        external_userids=_multi(row.get("wecom_external_userid", "")),
        id_numbers=_multi(row.get("id_number", "")), address=row.get("address", ""), city=row.get("city", ""))


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True


def _strong_reason(shared: list[tuple[str, str]]) -> str:
    return "; ".join(f"same {kind} {mask_value(kind, value)}" for kind, value in shared)


def _weak_reason(evidence: Iterable[Evidence]) -> str:
    return reasons.sentence(evidence, "en")


@dataclass(slots=True)
class Edges:
    """Direct pairs (i < j by position in records) judged the same customer, the pairs under
    that bar worth a person's look (suggestions), and the weights they were judged with."""

    same: list[tuple[int, int, float, str]]
    suggested: list[tuple[int, int, float, str]]
    model: FSModel
    candidate_pairs: int


def find_edges(index: IdentityIndex, records: Sequence[Record],
               progress: Callable[[int], None] | None = None,
               threshold: float | None = None, *, fit: bool = True) -> Edges:
    """Every candidate pair compared once; the Fellegi–Sunter weights then fitted by EM on those
    comparisons (fit=False: the matcher's own weights, as live matching uses), and each pair judged."""
    config = index.config
    threshold = config.auto_threshold if threshold is None else threshold
    matcher = index.matcher
    same: list[tuple[int, int, float, str]] = []
    compared: list[tuple[int, int, list[int], list[Evidence], list[str]]] = []
    for rec in records:
        i = rec.id
        strong: dict[int, list[tuple[str, str]]] = {}
        for kind, value in rec.strong_keys():
            holders = index.holders(kind, value)
            if len(holders) - 1 > config.strong_cap:
                holders = matcher.agreeing_holders(rec, [index.records[h] for h in holders if h != i])
                if not holders:
                    continue
            for h in holders:
                if h > i:
                    strong.setdefault(h, []).append((kind, value))

        def freq(criterion: str, key: str, _i: int = i) -> int:
            return index.freq(criterion, key, exclude=_i)

        for j, shared in strong.items():
            _, evidence, _ = matcher.score(rec, index.records[j], freq, explain=True)
            if any(e.code in CONFLICT_CODES for e in evidence):
                continue  # same mobile but two id numbers: not judged the same, a person decides
            same.append((i, j, 1.0, _strong_reason(shared)))
        for j in index.candidate_ids(rec):
            if j <= i or j in strong:
                continue
            vec, evidence, capped = matcher.compare(rec, index.records[j], freq)
            compared.append((i, j, vec, evidence, capped))
        if progress:
            progress(1)
    model = fit_em([tuple(v) for _, _, v, _, _ in compared], matcher.model) if fit else matcher.model
    suggested: list[tuple[int, int, float, str]] = []
    by_id = index.records
    for i, j, vec, evidence, capped in compared:
        score, weighed = matcher.judge(by_id[i], by_id[j], vec, evidence, capped, model)
        if score >= threshold:
            # 1.000 is kept for a shared strong identifier: weak evidence says 0.999 at most.
            same.append((i, j, min(round(score, 3), 0.999), _weak_reason(weighed)))
        elif score >= config.possible_threshold:
            suggested.append((i, j, round(score, 3), _weak_reason(weighed)))
    return Edges(same, suggested, model, len(compared))


def cluster_pairs(n: int, edges: Sequence[tuple[int, int, float, str]]) -> list[tuple[int, int, float, str]]:
    """Every pair inside each cluster. Direct pairs keep their own score and reason; others get
    the weakest link of the strongest path (a maximum spanning tree) and say so."""
    uf = _UnionFind(n)
    tree: dict[int, list[tuple[int, float]]] = {}
    direct: dict[tuple[int, int], tuple[float, str]] = {}
    for i, j, score, reason in edges:
        key = (min(i, j), max(i, j))
        if key not in direct or direct[key][0] < score:
            direct[key] = (score, reason)
    for (i, j), (score, _) in sorted(direct.items(), key=lambda kv: -kv[1][0]):
        if uf.union(i, j):
            tree.setdefault(i, []).append((j, score))
            tree.setdefault(j, []).append((i, score))
    members: dict[int, list[int]] = {}
    for node in tree:
        members.setdefault(uf.find(node), []).append(node)
    out: list[tuple[int, int, float, str]] = []
    for nodes in members.values():
        nodes.sort()
        for a in nodes:
            # Walk the tree from a, carrying the weakest link and the first hop.
            best: dict[int, tuple[float, int]] = {a: (1.0, a)}
            stack = [a]
            while stack:
                cur = stack.pop()
                for nxt, score in tree.get(cur, ()):
                    if nxt not in best:
                        weakest = min(best[cur][0], score)
                        best[nxt] = (weakest, nxt if cur == a else best[cur][1])
                        stack.append(nxt)
            for b in nodes:
                if b <= a:
                    continue
                if (a, b) in direct:
                    score, reason = direct[(a, b)]
                    out.append((a, b, score, reason))
                else:
                    weakest, via = best[b]
                    out.append((a, b, round(weakest, 3), f"same cluster (transitive, via {{{via}}})"))
    out.sort()
    return out


@dataclass(frozen=True, slots=True)
class DedupeResult:
    pairs: list[Pair]  # judged the same customer (clusters closed unless transitive=False)
    suggestions: list[Pair]  # direct pairs under the automatic bar, for a person to confirm
    direct: list[Pair]  # the direct pairs judged the same, before clusters are closed
    model: FSModel
    candidate_pairs: int


def resolve_rows(rows: Sequence[Mapping[str, Any]], progress: Callable[[int], None] | None = None, *,
                 config: MatchConfig | None = None, threshold: float | None = None,
                 transitive: bool = True, fit: bool = True) -> DedupeResult:
    """Every pair of rows judged to be the same customer, and the suggestions below that bar.
    Ids are the rows' `id` column, or "line N" (N counting the header as line 1) where it is empty.
    transitive=False: only the direct matches, no cluster closure."""
    config = config or DEFAULT_CONFIG
    index = IdentityIndex(config)
    records = []
    ids: list[str] = []
    for n, row in enumerate(rows):
        rec = record_from_row(n, row)
        records.append(rec)
        index.add(rec)
        ids.append(_clean(row).get("id") or f"line {n + 2}")
    edges = find_edges(index, records, progress, threshold, fit=fit)
    suggestions = [Pair(ids[a], ids[b], score, reason) for a, b, score, reason in sorted(edges.suggested)]
    direct = [Pair(ids[a], ids[b], score, reason) for a, b, score, reason in sorted(edges.same)]
    if not transitive:
        pairs = direct
    else:
        pairs = [Pair(ids[a], ids[b], score, _via(reason, ids))
                 for a, b, score, reason in cluster_pairs(len(records), edges.same)]
    return DedupeResult(pairs, suggestions, direct, edges.model, edges.candidate_pairs)


def dedupe_rows(rows: Sequence[Mapping[str, Any]], progress: Callable[[int], None] | None = None, *,
                config: MatchConfig | None = None, threshold: float | None = None,
                transitive: bool = True, fit: bool = True) -> list[Pair]:
    """resolve_rows' pairs judged the same customer."""
    return resolve_rows(rows, progress, config=config, threshold=threshold, transitive=transitive, fit=fit).pairs


def _via(reason: str, ids: Sequence[str]) -> str:
    if reason.startswith("same cluster") and "{" in reason:
        start, end = reason.index("{"), reason.index("}")
        return reason[:start] + ids[int(reason[start + 1:end])] + reason[end + 1:]
    return reason


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """UTF-8 (with or without BOM), else GB18030, as Chinese Excel exports often are."""
    raw = Path(path).read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValueError(f"{path}: neither UTF-8 nor GB18030 text")
    return [dict(r) for r in csv.DictReader(io.StringIO(text, newline=""))]


def write_pairs(pairs: Iterable[Pair], out_path: str | Path) -> int:
    n = 0
    with open(out_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id_a", "id_b", "score", "reason"])
        for p in pairs:
            writer.writerow([p.id_a, p.id_b, f"{p.score:.3f}", p.reason])
            n += 1
    return n


def run_dedupe(input_path: str | Path | Sequence[Mapping[str, Any]], out_path: str | Path,
               progress: Callable[[int], None] | None = None, *, config: MatchConfig | None = None,
               threshold: float | None = None, suggestions_path: str | Path | None = None) -> DedupeStats:
    """The `leadbot dedupe` command: reads the CSV (or takes rows already read), writes the pairs,
    returns counts. progress(1) is called once per row compared. suggestions_path: where the
    pairs under the automatic bar go (same columns), for a person to confirm one by one."""
    rows = read_rows(input_path) if isinstance(input_path, (str, Path)) else list(input_path)
    result = resolve_rows(rows, progress, config=config, threshold=threshold)
    pairs = result.pairs
    write_pairs(pairs, out_path)
    if suggestions_path is not None:
        write_pairs(result.suggestions, suggestions_path)
    clusters: dict[str, set[str]] = {}
    parent: dict[str, str] = {}
    for p in pairs:
        root = parent.setdefault(p.id_a, p.id_a)
        parent.setdefault(p.id_b, root)
        clusters.setdefault(root, {root}).add(p.id_b)
    strong = sum(1 for p in pairs if p.reason.startswith("same ") and p.score == 1.0)
    transitive = sum(1 for p in pairs if p.reason.startswith("same cluster"))
    return DedupeStats(rows=len(rows), pairs=len(pairs), clusters=len(clusters),
                       largest_cluster=max((len(c) for c in clusters.values()), default=0),
                       direct_strong=strong, direct_weak=len(pairs) - strong - transitive, out=str(out_path),
                       suggested=len(result.suggestions))
