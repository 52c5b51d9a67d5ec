"""Batch dedupe (`leadbot dedupe`): every pair inside a cluster, the CSV it writes, and the quality
floor on the labelled set."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from identity.dedupe import dedupe_rows, resolve_rows, run_dedupe

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
    {"id": "H", "name": "陈静怡", "company": "深圳市大疆创新科技有限公司", "address": "深圳市南山区仙元路55号"},
    {"id": "I", "name": "Jingyi Chen", "company": "大疆创新科技有限公司", "address": "南山区 仙元路 55号"},
]


def _pairs(rows) -> dict[frozenset, object]:
    return {frozenset((p.id_a, p.id_b)): p for p in dedupe_rows(rows)}


def test_every_pair_inside_a_cluster_is_written() -> None:
    pairs = _pairs(ROWS)
    assert set(pairs) == {frozenset("AB"), frozenset("BC"), frozenset("AC"), frozenset("HI")}
    assert "mobile" in pairs[frozenset("AB")].reason and pairs[frozenset("AB")].score == 1.0
    assert "email" in pairs[frozenset("BC")].reason
    # 王小明 at 华为 and 王小明 with a huawei.com mailbox: the mail domain names the company.
    assert "huawei.com" in pairs[frozenset("AC")].reason
    assert "address" in pairs[frozenset("HI")].reason and pairs[frozenset("HI")].score >= 0.8


def test_common_names_elsewhere_and_switchboard_colleagues_are_not_pairs() -> None:
    pairs = _pairs(ROWS)
    assert frozenset("DE") not in pairs and frozenset("FG") not in pairs


def test_a_common_name_with_only_company_evidence_is_a_suggestion_with_its_reason() -> None:
    rows = [{"id": "H", "name": "陈静", "company": "深圳市大疆创新科技有限公司", "address": "深圳市南山区仙元路55号"},
            {"id": "I", "name": "Jing Chen", "company": "大疆创新科技有限公司", "address": "南山区 仙元路 55号"}]
    result = resolve_rows(rows)
    assert result.pairs == []
    [suggestion] = result.suggestions
    assert "common name" in suggestion.reason and "given name and surname swapped" in suggestion.reason


def test_a_role_mailbox_and_a_switchboard_never_join_two_people() -> None:
    rows = [{"id": "A", "name": "周燕", "email": "sales@hengxin.com.cn", "phone": "0512-62808338", "company": "恒信科技"},
            {"id": "B", "name": "周燕", "email": "sales@hengxin.com.cn", "phone": "0512-62808338", "company": "恒信科技"},
            {"id": "C", "name": "董雪", "email": "sales@hengxin.com.cn", "phone": "0512-62808338", "company": "恒信科技"},
            {"id": "D", "name": "李强", "email": "sales@hengxin.com.cn", "phone": "0512-62808338", "company": "恒信科技"},
            {"id": "E", "name": "王五", "email": "sales@hengxin.com.cn", "phone": "0512-62808338", "company": "恒信科技"}]
    pairs = _pairs(rows)
    assert all("sales@" not in p.reason.split(";")[0] for p in pairs.values())
    assert set(pairs) <= {frozenset("AB")}  # only the two 周燕 could be one person, never on the mailbox


def test_a_second_mailbox_at_the_company_domain_links_the_name() -> None:
    rows = [{"id": "A", "name": "张立新", "company": "ABC科技(上海)有限公司"},
            {"id": "B", "name": "Lixin Zhang", "email": "l.zhang@abc.com"},
            {"id": "C", "name": "Zhang Lixni", "email": "zhanglixin@abc.com", "company": "ABC科技"}]
    result = resolve_rows(rows, transitive=False, fit=False)
    linked = {frozenset((p.id_a, p.id_b)): p for p in result.pairs}
    assert frozenset("BC") in linked and frozenset("AC") in linked
    assert "same company mail domain abc.com" in linked[frozenset("BC")].reason


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


def test_quality_on_the_labelled_sets() -> None:
    rows, truth = identity_quality.labelled()
    assert len(rows) >= 150
    same = identity_quality.report(rows, truth)["same"]
    assert same["precision"] >= 0.99 and same["recall"] >= 0.85, same
    assert same["suggested"]["same_or_suggested_recall"] >= 0.95, same
    # The realistic Chinese set, reported on the split the thresholds were not set on.
    rows, truth = identity_quality.b2b_cn("test")
    assert len(rows) >= 200
    same = identity_quality.report(rows, truth)["same"]
    assert same["auto_precision"] >= 0.99 and same["recall"] >= 0.75, same


def test_run_dedupe_writes_the_suggestions_beside_the_pairs(tmp_path: Path) -> None:
    rows = [{"id": "H", "name": "陈静", "company": "深圳市大疆创新科技有限公司", "address": "深圳市南山区仙元路55号"},
            {"id": "I", "name": "Jing Chen", "company": "大疆创新科技有限公司", "address": "南山区 仙元路 55号"},
            {"id": "J", "name": "刘强", "company": "华为技术有限公司"}]
    stats = run_dedupe(rows, tmp_path / "pairs.csv", suggestions_path=tmp_path / "suggested.csv")
    assert (stats.pairs, stats.suggested) == (0, 1)
    with open(tmp_path / "suggested.csv", newline="", encoding="utf-8") as fh:
        [row] = list(csv.DictReader(fh))
    assert (row["id_a"], row["id_b"]) == ("H", "I") and "common name" in row["reason"]
