"""The matcher over the in-memory index: strong identifiers decide, weak evidence suggests,
frequency caps, contradictions, and every decision explains itself."""

from __future__ import annotations

import pytest

from identity.index import IdentityIndex
from identity.matcher import NEW, POSSIBLE, SAME, MatchConfig, build_record


def _index(*records, config: MatchConfig | None = None) -> IdentityIndex:
    index = IdentityIndex(config)
    index.add_many(records)
    return index


def test_pinyin_and_chinese_names_with_the_same_mobile_are_one_customer() -> None:
    index = _index(build_record(1, name="王小明", company="华为技术有限公司", phones="13812345678"))
    decision = index.match(build_record(None, name="Xiaoming Wang", phones="+86 138-1234-5678"))
    assert (decision.kind, decision.customer_id) == (SAME, 1)
    assert "mobile" in decision.reason and "138****5678" in decision.reason
    assert "13812345678" not in decision.reason  # evidence is shown to people: masked
    assert any(e.field == "name" and e.score >= 0.9 for e in decision.evidence)


@pytest.mark.parametrize("kind,value,probe", [
    ("unionid", "oUnion123", dict(unionids="oUnion123")),
    ("external_userid", "wmExt1", dict(external_userids="wmExt1")),
    ("email", "WXM@Huawei.com", dict(emails=" wxm@huawei.com")),
    ("id_number", "11010519491231002x", dict(id_numbers="11010519491231002X")),
])
def test_each_strong_identifier_decides(kind: str, value: str, probe: dict) -> None:
    index = _index(build_record(7, name="王小明", **{{"unionid": "unionids", "external_userid": "external_userids",
                                                    "email": "emails", "id_number": "id_numbers"}[kind]: value}))
    decision = index.match(build_record(None, name="张三", **probe))
    assert (decision.kind, decision.customer_id) == (SAME, 7)
    # Worded for a person, never by the field's code (unionid, external_userid, id_number).
    assert {"unionid": "WeChat account", "external_userid": "WeCom contact", "email": "email",
            "id_number": "ID number"}[kind] in decision.reason and kind not in decision.reason.replace("email", "")


def test_common_name_at_different_companies_is_not_a_duplicate() -> None:
    index = _index(build_record(1, name="张伟", company="华为技术有限公司", phones="13811112222"),
                   build_record(2, name="张伟", company="腾讯科技（深圳）有限公司", phones="13933334444"))
    decision = index.match(build_record(None, name="张伟", company="阿里巴巴（中国）有限公司"))
    assert decision.kind == NEW and decision.customer_id is None
    # ... but the same name at the same company, however the company is written, is suggested.
    decision = index.match(build_record(None, name="张伟", company="深圳市腾讯科技有限公司"))
    assert (decision.kind, decision.customer_id) == (POSSIBLE, 2)
    assert "company" in decision.reason and "name" in decision.reason


def test_different_mobiles_weigh_against_a_weak_match() -> None:
    index = _index(build_record(1, name="张伟", company="华为技术有限公司", phones="13811112222"))
    decision = index.match(build_record(None, name="张伟", company="华为技术", phones="13955556666"))
    without = index.match(build_record(None, name="张伟", company="华为技术"))
    assert decision.kind != SAME and decision.score < without.score
    assert "different mobiles" in decision.reason and "手机号不同" in decision.reason_zh


def test_a_masked_mobile_in_a_remark_links_the_honorific() -> None:
    index = _index(build_record(1, name="张伟", company="ABC科技(上海)有限公司", phones="13812345678"),
                   build_record(2, name="张强", company="ABC科技(上海)有限公司", phones="13912340000"))
    decision = index.match(build_record(None, name="张工-ABC科技", company="ABC科技", phones="138****5678"))
    assert decision.customer_id == 1 and decision.kind != NEW
    assert "138****5678" in decision.reason and "手机号相符（138****5678）" in decision.reason_zh


def test_a_shared_switchboard_does_not_count_but_a_direct_line_does() -> None:
    switchboard = "021-61234567"
    colleagues = [build_record(i, name=n, company="上海某某贸易有限公司", phones=switchboard)
                  for i, n in enumerate(["李娜", "赵六", "孙七", "周八", "吴九"], start=1)]
    index = _index(*colleagues, build_record(10, name="陈静", phones="0755-86013388"))
    decision = index.match(build_record(None, name="李娜", phones="(021) 6123 4567"))
    assert decision.kind == NEW
    assert "switchboard" in decision.reason and "landline" in decision.capped
    # The same evidence on a line only one customer has: a possible duplicate.
    decision = index.match(build_record(None, name="陈静", phones="+86 755 8601 3388"))
    assert (decision.kind, decision.customer_id) == (POSSIBLE, 10)
    assert "direct line" in decision.reason and "同一直线电话" in decision.reason_zh


def test_a_very_common_name_stops_counting() -> None:
    config = MatchConfig(name_cap=3)
    many = [build_record(i, name="张伟", company=f"公司{i}号") for i in range(1, 6)]
    index = _index(*many, build_record(99, name="张伟", company="华为技术有限公司", phones="0755-28780808",
                                       address="深圳市龙岗区坂田华为基地B区"), config=config)
    decision = index.match(build_record(None, name="张伟", company="华为技术有限公司"))
    assert decision.kind == NEW and "name" in decision.capped
    assert "common name" in decision.reason
    # Other evidence still counts: company, a direct line, the address.
    decision = index.match(build_record(None, name="张伟", company="华为技术有限公司", phones="0755 2878 0808",
                                        address="龙岗区坂田华为基地B区"))
    assert (decision.kind, decision.customer_id) == (POSSIBLE, 99)


def test_names_that_differ_are_colleagues_not_duplicates() -> None:
    index = _index(build_record(1, name="王小明", company="华为技术有限公司", emails="wxm@huawei.com",
                                address="深圳市龙岗区坂田华为基地"))
    decision = index.match(build_record(None, name="刘强", company="华为技术有限公司", emails="lq@huawei.com",
                                        address="深圳市龙岗区坂田华为基地"))
    assert decision.kind == NEW


def test_honorific_names_need_more_evidence() -> None:
    index = _index(build_record(1, name="张伟", company="华为技术有限公司", phones="13811112222 / 0755-28780808"))
    assert index.match(build_record(None, name="张总", company="华为")).kind == NEW
    decision = index.match(build_record(None, name="张总", company="华为技术有限公司", phones="0755 2878 0808"))
    assert (decision.kind, decision.customer_id) == (POSSIBLE, 1)
    assert "honorific" in decision.reason
    assert decision.score < index.config.auto_threshold  # suggested, never judged the same on its own


def test_two_addresses_at_one_employer_are_two_people() -> None:
    index = _index(build_record(1, name="刘洋", company="北京字节跳动科技有限公司", emails="liuyang@bytedance.com"))
    decision = index.match(build_record(None, name="刘阳", company="字节跳动", emails="liuyang2@bytedance.com"))
    assert decision.kind == NEW and "different addresses at one employer" in decision.reason


def test_two_id_numbers_mean_two_people_even_with_one_mobile() -> None:
    # Both resident IDs' check digits hold: neither is a typo.
    index = _index(build_record(1, name="王小明", phones="13812345678", id_numbers="11010519491231002X"))
    decision = index.match(build_record(None, name="王小明", phones="13812345678", id_numbers="320102198001011238"))
    assert decision.kind == POSSIBLE  # a person decides: a recycled number, a shared phone
    assert "different ID numbers" in decision.reason


def test_two_strong_identifiers_naming_two_customers() -> None:
    index = _index(build_record(1, name="王小明", phones="13812345678"),
                   build_record(2, name="王小明", emails="wxm@huawei.com"))
    decision = index.match(build_record(None, name="王小明", phones="13812345678", emails="wxm@huawei.com"))
    assert decision.kind == SAME and decision.customer_id == 1  # a mobile outranks an email
    assert [c.customer_id for c in decision.candidates] == [1, 2]
    assert "also shares an identifier with 2" in decision.reason


def test_a_document_number_without_check_digit_weighs_but_does_not_veto() -> None:
    index = _index(build_record(1, name="Jett Colegate", address="55 hampton circuit gibraltar 6000", city="st albans",
                                id_numbers="1302954"))
    decision = index.match(build_record(None, name="Colegate Jett", address="55 hampton ircuit gibroatar 6000",
                                        city="st albans", id_numbers="1742749"))
    assert decision.kind != NEW and "different ID numbers" in decision.reason
    assert "given name and surname swapped" in decision.reason


def test_distinct_pairs_suppress_suggestions() -> None:
    a = build_record(1, name="张伟", company="华为技术有限公司")
    b = build_record(2, name="张伟", company="华为技术")
    index = _index(a, b)
    assert index.match(a).customer_id == 2
    index.add_distinct(1, 2)
    assert index.match(a).kind == NEW


def test_index_updates_incrementally() -> None:
    index = _index(build_record(1, name="王小明", phones="13812345678"))
    index.add(build_record(1, name="王小明", phones="13900001111"))  # the number changed
    assert index.match(build_record(None, phones="13812345678")).kind == NEW
    assert index.match(build_record(None, phones="13900001111")).customer_id == 1
    index.remove(1)
    assert index.match(build_record(None, phones="13900001111")).kind == NEW
    assert len(index) == 0 and not index.strong["mobile"]


def test_decision_serialises() -> None:
    index = _index(build_record(1, name="王小明", company="华为", phones="13812345678"))
    data = index.match(build_record(None, name="王小明", phones="13812345678")).to_json()
    assert data["kind"] == SAME and data["customer_id"] == 1 and data["candidates"][0]["reason"]
