"""Normalisation: every spelling of one identifier compares equal, and the hard cases."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from identity.company import company_core, company_key, normalize_company
from identity.names import clean_name, name_similarity, parse_name
from identity.normalize import (cn_id_checksum_ok, corporate_domain, normalize_address,
                                           normalize_email, normalize_id_number, normalize_identity,
                                           normalize_phone, parse_phones)

MOBILE = "+8613812345678"


@pytest.mark.parametrize("raw", [
    "13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "+86-138-1234-5678",
    "+8613812345678", "008613812345678", "0086 138 1234 5678", "86-13812345678", "8613812345678",
    "(+86) 138 1234 5678", "１３８１２３４５６７８", " 138.1234.5678 ",
])
def test_mobile_spellings_are_one_number(raw: str) -> None:
    assert normalize_phone(raw) == ("mobile", MOBILE)


@pytest.mark.parametrize("raw", [
    "021-61234567", "(021) 6123 4567", "+86 21 6123 4567", "0086-21-61234567", "86-21-61234567",
    "021 6123 4567 转 808", "021-61234567-808", "021-61234567 ext. 808", "862161234567",
])
def test_landline_spellings_and_extensions(raw: str) -> None:
    assert normalize_phone(raw) == ("landline", "+862161234567")


def test_landlines_and_service_numbers_are_not_mobiles() -> None:
    assert normalize_phone("0755-86013388") == ("landline", "+8675586013388")
    assert normalize_phone("400-812-3123")[0] == "landline"  # a company's service number


@pytest.mark.parametrize("raw", ["", None, "12345", "1381234567", "abc", "95588", "138123456789", "10000000000"])
def test_invalid_phones(raw: str | None) -> None:
    assert normalize_phone(raw) is None


def test_foreign_numbers_keep_their_country() -> None:
    assert normalize_phone("+1 650 253 0000") == ("mobile", "+16502530000")
    assert normalize_phone("+44 20 7946 0958")[1] == "+442079460958"


def test_several_numbers_in_one_field() -> None:
    phones, bad = parse_phones("138 1234 5678 / 021-61234567；bogus")
    assert [(p.kind, p.e164) for p in phones] == [("mobile", MOBILE), ("landline", "+862161234567")]
    assert bad == ["bogus"]


def test_mobile_fast_path_agrees_with_phonenumbers() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        digits = "1" + str(rng.randint(3, 9)) + f"{rng.randrange(10**9):09d}"
        num = phonenumbers.parse(digits, "CN")
        expected = phonenumbers.is_valid_number(num) and phonenumbers.number_type(num) in (
            phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
        assert (normalize_phone(digits) is not None and normalize_phone(digits)[0] == "mobile") == expected, digits


@pytest.mark.parametrize("raw,expected", [
    ("Wang.XM@Huawei.COM", "wang.xm@huawei.com"), ("  wxm@huawei.com ", "wxm@huawei.com"),
    ("ｗｘｍ＠ｈｕａｗｅｉ．ｃｏｍ", "wxm@huawei.com"), ("mailto:WXM@huawei.com", "wxm@huawei.com"),
    ("<wxm@huawei.com>", "wxm@huawei.com"), ("not an email", None), ("a@b", None), ("", None),
])
def test_emails(raw: str, expected: str | None) -> None:
    assert normalize_email(raw) == expected


def test_free_mail_is_no_employer() -> None:
    assert corporate_domain("12345@qq.com") == ""
    assert corporate_domain("x@163.com") == ""
    assert corporate_domain("x@Huawei.com") == "huawei.com"


def test_id_numbers_and_exact_ids() -> None:
    assert normalize_id_number(" 11010519491231002x ") == "11010519491231002X"
    assert cn_id_checksum_ok("11010519491231002X")
    assert not cn_id_checksum_ok("110105194912310021")
    # unionid / external_userid are opaque and case-sensitive: only trimmed.
    assert normalize_identity("unionid", " oAbC123 ") == ("oAbC123", True)
    assert normalize_identity("external_userid", "wmABC") == ("wmABC", True)
    assert normalize_identity("phone", "021-61234567") == ("+862161234567", False)
    assert normalize_identity("phone", "13812345678") == (MOBILE, True)
    assert normalize_identity("email", "nope") is None


@pytest.mark.parametrize("variants", [
    ["华为技术有限公司", "华为技术", "上海华为技术有限公司", "华为技术有限公司上海分公司", "华为技术(上海)有限公司",
     "华为技术（上海）有限公司", "广东省深圳市华为技术有限公司", "深圳市华为技术股份有限公司", " 华为 技术 有限 公司 "],
    ["腾讯科技（深圳）有限公司", "腾讯科技(深圳)有限公司", "深圳市腾讯科技有限公司", "腾讯科技集团"],
    ["ＡＢＣ科技有限公司", "ABC科技有限公司", "abc 科技 有限责任公司", "北京市ABC科技有限公司"],
    ["Huawei Technologies Co., Ltd.", "HUAWEI TECHNOLOGIES CO LTD", "Huawei Technologies Co.,Ltd", "huawei technologies"],
    ["苏州工业园区鑫达精密机械有限公司", "鑫达精密机械有限公司"],
    ["阿里巴巴（中国）有限公司", "阿里巴巴集团", "阿里巴巴集团控股有限公司"],
])
def test_company_variants_normalise_equal(variants: list[str]) -> None:
    assert len({normalize_company(v) for v in variants}) == 1, {v: normalize_company(v) for v in variants}


def test_company_keys_meet_across_scripts_and_descriptors() -> None:
    assert company_key("华为技术有限公司") == company_key("Huawei Technologies Co., Ltd.") == "huawei"
    assert company_key("小米科技有限责任公司") == company_key("Xiaomi Inc.")
    assert company_core("广东省深圳市腾讯计算机系统有限公司") == company_core("腾讯科技（深圳）有限公司") == "腾讯"


def test_city_bound_institutions_keep_their_city() -> None:
    assert normalize_company("北京银行股份有限公司") != normalize_company("上海银行股份有限公司")
    assert normalize_company("北京大学") != normalize_company("上海大学")
    assert normalize_company("中山大学") == "中山大学"


@pytest.mark.parametrize("raw", [
    "王小明", "Wang Xiaoming", "Xiaoming Wang", "WANG XIAOMING", "wang xiao ming", "Xiao-Ming Wang", "王 小明",
    "王小明（微信备注：华为采购）", "王小明(华为)", "【客户】王小明", "A03-王小明-销售部", "王小明-销售部 🌸",
    "华为-王小明", "Tony 王小明", "王小明 13812345678", "王小明经理", "😀王小明😀", "Wáng Xiǎomíng",
])
def test_person_name_spellings_share_one_key(raw: str) -> None:
    assert parse_name(raw).key == parse_name("王小明").key
    assert not parse_name(raw).weak


def test_chinese_against_pinyin_in_either_order() -> None:
    han = parse_name("王小明")
    for latin in ("Wang Xiaoming", "Xiaoming Wang", "xiao ming wang"):
        score, _ = name_similarity(han, parse_name(latin))
        assert score >= 0.9
    assert name_similarity(han, parse_name("王晓明"))[0] == pytest.approx(0.85)  # an IME slip, or another person
    assert name_similarity(han, parse_name("Li Lei"))[0] < 0.5
    assert name_similarity(han, parse_name("王小明"))[0] == 1.0


def test_remark_noise_is_removed() -> None:
    assert clean_name("王小明（微信备注：华为采购 13812345678）") == "王小明"
    assert clean_name("AAA-张伟-销售部") == "张伟"
    assert clean_name("李娜🌸🌸") == "李娜"
    assert clean_name("") == ""


@pytest.mark.parametrize("raw,surname", [
    ("张总", "zhang"), ("李经理", "li"), ("王老师", "wang"), ("刘工", "liu"), ("小王", "wang"),
    ("陈姐", "chen"), ("欧阳总监", "ouyang"), ("赵先生", "zhao"), ("Mr. Wang", "wang"), ("老李", "li"),
])
def test_honorific_only_names_are_weak(raw: str, surname: str) -> None:
    info = parse_name(raw)
    assert info.weak and info.surname == surname and info.key == ""


def test_weak_name_only_matches_its_surname() -> None:
    assert name_similarity(parse_name("张总"), parse_name("张伟"))[0] == pytest.approx(0.7)
    assert name_similarity(parse_name("张总"), parse_name("李伟"))[0] == 0.0


def test_surname_readings_and_compound_surnames() -> None:
    assert parse_name("单田芳").tokens[0] == "shan"
    assert parse_name("曾小贤").tokens[0] == "zeng"
    assert parse_name("欧阳娜娜").tokens == ("ouyang", "nana")
    assert parse_name("吕布").key == parse_name("Lyu Bu").key == parse_name("Lv Bu").key


def test_addresses() -> None:
    a = normalize_address("上海市浦东新区 张江路 88号 5楼")
    assert a == normalize_address("浦东新区张江路88号5楼") == normalize_address("上海 浦东新区张江路８８号５楼")
