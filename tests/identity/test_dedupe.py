"""Batch dedupe (`leadbot dedupe`): every pair inside a cluster, the CSV it writes, and the quality
floor on the labelled set."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from crm_bridge.identity.dedupe import dedupe_rows, run_dedupe

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import identity_quality  # noqa: E402

ROWS = [
    {"id": "A", "name": "王小明", "phone": "138 1234 5678", "company": "华为技术有限公司"},
    {"id": "B", "name": "Xiaoming Wang", "phone": "+86 13812345678", "email": "WXM@huawei.com"},
    {"id": "C", "name": "王小明（微信备注：华为）", "email": "wxm@huawei.com"},
    {"id": "D", "name": "张伟", "phone": "13911112222", "company": "华为技术有限公司"},
    {"id": "E", "name": "张伟", "phone": "13933334444", "company": "腾讯科技（深圳）有限公司"},
    {"id": "F", "name": "李娜", "phone": "021-61234567", "company": "上海某某贸易有限公司"},
    {"id": "G", "name": "赵六", "phone": "021-61234567", "company": "上海某某贸易有限公司"},
    {"id": "H", "name": "陈静", "company": "深圳市大疆创新科技有限公司", "address": "深圳市南山区仙元路55号"},
    {"id": "I", "name": "Jing Chen", "company": "大疆创新科技有限公司", "address": "南山区 仙元路 55号"},
]


def _pairs(rows) -> dict[frozenset, object]:
    return {frozenset((p.id_a, p.id_b)): p for p in dedupe_rows(rows)}


def test_every_pair_inside_a_cluster_is_written() -> None:
    pairs = _pairs(ROWS)
    assert set(pairs) == {frozenset("AB"), frozenset("BC"), frozenset("AC"), frozenset("HI")}
    assert "mobile" in pairs[frozenset("AB")].reason and pairs[frozenset("AB")].score == 1.0
    assert "email" in pairs[frozenset("BC")].reason
    assert "transitive" in pairs[frozenset("AC")].reason and "via B" in pairs[frozenset("AC")].reason
    assert "address" in pairs[frozenset("HI")].reason and pairs[frozenset("HI")].score >= 0.8


def test_common_names_elsewhere_and_switchboard_colleagues_are_not_pairs() -> None:
    pairs = _pairs(ROWS)
    assert frozenset("DE") not in pairs and frozenset("FG") not in pairs


def test_a_number_typed_into_every_row_stops_counting() -> None:
    rows = [{"id": str(i), "name": n, "phone": "13800000000"} for i, n in enumerate(["刘一", "陈二", "张三", "李四", "王五"])]
    assert dedupe_rows(rows) == []  # the rep's own mobile, not the customers'


def test_run_dedupe_writes_the_csv_and_reports(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    with open(src, "w", newline="", encoding="gb18030") as fh:  # as Chinese Excel saves it
        writer = csv.DictWriter(fh, fieldnames=["id", "name", "phone", "email", "company", "address"])
        writer.writeheader()
        for row in ROWS:
            writer.writerow({k: row.get(k, "") for k in writer.fieldnames})
    ticks: list[int] = []
    stats = run_dedupe(src, tmp_path / "pairs.csv", ticks.append)
    assert sum(ticks) == len(ROWS)
    with open(tmp_path / "pairs.csv", newline="", encoding="utf-8") as fh:
        out = list(csv.DictReader(fh))
    assert list(out[0]) == ["id_a", "id_b", "score", "reason"]
    assert {(r["id_a"], r["id_b"]) for r in out} == {("A", "B"), ("A", "C"), ("B", "C"), ("H", "I")}
    assert (stats.rows, stats.pairs, stats.clusters, stats.largest_cluster) == (9, 4, 2, 3)
    assert "4 pairs in 2 clusters" in str(stats)
    # Rows already read (what the CLI hands over) work the same.
    assert run_dedupe(ROWS, tmp_path / "again.csv").pairs == 4


def test_rows_without_id_are_named_by_line() -> None:
    pairs = dedupe_rows([{"name": "王小明", "phone": "13812345678"}, {"name": "王小明", "phone": "138-1234-5678"}])
    assert [(p.id_a, p.id_b) for p in pairs] == [("line 2", "line 3")]


def test_quality_on_the_labelled_set() -> None:
    rows, truth = identity_quality.labelled()
    assert len(rows) >= 150
    report = identity_quality.report(rows, truth)
    assert report["same"]["precision"] >= 0.95 and report["same"]["recall"] >= 0.85, report["same"]
    assert report["suggested"]["recall"] >= 0.95, report["suggested"]
    assert report["same"]["recall"] > report["strong_only_baseline"]["recall"]
