"""Why two records are (or are not) one customer, whole in one language.

Evidence carries a code and its values (masked where they are personal); this module turns a list
of them into "姓名相同（拼音）+ 同公司邮箱域名 abc.com" or "same name (pinyin) + same company mail
domain abc.com". Cards show the sentence of their own language as it is, never half of each.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Protocol

LANGS = ("zh", "en")

# code -> (zh, en); {a}, {b}, {v}, {n} are the evidence's values.
TEXTS: dict[str, tuple[str, str]] = {
    # strong identifiers
    "strong.mobile": ("手机号相同 {v}", "same mobile {v}"),
    "strong.email": ("邮箱相同 {v}", "same email {v}"),
    # No field code in either language: a rep reads "same WeChat account", not "unionid".
    "strong.unionid": ("微信账号相同", "same WeChat account"),
    "strong.external_userid": ("企业微信好友相同", "same WeCom contact"),
    "strong.dingtalk_id": ("钉钉账号相同", "same DingTalk account"),
    "strong.id_number": ("证件号相同 {v}", "same ID number {v}"),
    # names
    "name.same": ("姓名相同", "same name"),
    "name.pinyin": ("姓名相同（拼音）", "same name (pinyin)"),
    "name.order": ("姓名相同（姓名顺序不同）", "same name, given name and surname swapped"),
    "name.homophone": ("姓名同音（{a}≈{b}）", "same-sounding name ({a} ≈ {b})"),
    "name.typo": ("姓名相近（{a}≈{b}）", "similar name ({a} ≈ {b})"),
    "name.part": ("姓名部分相同（{a}≈{b}）", "part of the name ({a} ≈ {b})"),
    "name.surname": ("仅姓氏相同（称呼 {a}）", "surname only (honorific {a})"),
    "name.differ": ("姓名不同（{a}≠{b}）", "names differ ({a} ≠ {b})"),
    "name.common_capped": ("常见姓名（{n} 条记录），不计", "common name ({n} records), not counted"),
    "name.common": ("常见姓名，仅凭姓名和公司不自动合并", "common name: name and company alone are not enough"),
    "name.weak_cap": ("只有称呼没有全名，最多作为建议", "honorific-only name: a suggestion at most"),
    "name.gate": ("姓名不同，不是同一人", "names differ: scores halved"),
    # company
    "company.same": ("同公司 {a}", "same company {a}"),
    "company.variant": ("同公司（写法不同：{a}≈{b}）", "same company written differently ({a} ≈ {b})"),
    "company.similar": ("公司名称相近（{a}≈{b}）", "similar company ({a} ≈ {b})"),
    "company.differ": ("公司不同（{a}≠{b}）", "company differs ({a} ≠ {b})"),
    "company.domain": ("公司邮箱域名 {b}（{a}）", "company mail domain {b} ({a})"),
    "company.capped": ("公司记录过多，不计", "company: too many records, not counted"),
    # mail
    "domain.same": ("同公司邮箱域名 {v}", "same company mail domain {v}"),
    "domain.differ": ("公司邮箱域名不同", "different company mail domains"),
    "domain.capped": ("邮箱域名 {v} 记录过多，不计", "mail domain {v}: too many records, not counted"),
    "email.from_name": ("两个邮箱都由姓名构成（{a}、{b}）", "both mailboxes are built from the name ({a}, {b})"),
    "email.conflict": ("同公司不同邮箱", "different addresses at one employer"),
    "email.role": ("角色邮箱 {v} 不代表个人", "role mailbox {v}: not a person's identity"),
    # phones
    "mobile.differ": ("手机号不同", "different mobiles"),
    "mobile.masked": ("手机号相符（{v}）", "masked mobile agrees ({v})"),
    "landline.same": ("同一直线电话 {v}", "{v} direct line"),
    "landline.switchboard": ("总机 {v}（{n} 条记录共用），不计", "{v} shared by {n} records (switchboard), not counted"),
    # places
    "address.same": ("地址相同", "same address"),
    "address.similar": ("地址相近", "similar address"),
    "address.differ": ("地址不同", "different address"),
    "address.capped": ("地址由 {n} 条记录共用，不计", "address shared by {n} records, not counted"),
    "city.same": ("同城（{v}）", "same city ({v})"),
    "city.differ": ("城市不同", "different city"),
    # identifiers that contradict
    "id_number.typo": ("证件号仅差一位（笔误？）", "ID numbers one character apart (a typo?)"),
    "id_number.differ": ("证件号不同", "different ID numbers"),
    "id_number.other": ("证件号不同", "different ID numbers"),
    "unionid.differ": ("微信账号不同", "different WeChat accounts"),
    # decisions
    "decision.possible": ("可能与客户 {v} 重复（{n}）：", "possible duplicate of {v} ({n}): "),
    "decision.new_best": ("新客户：最接近的客户 {v} 仅 {n}：", "new: best candidate {v} scored {n}: "),
    "decision.new_none": ("新客户：没有客户共享标识、姓名、公司、座机或地址",
                          "new: no candidate shares an identifier, name, company, landline or address"),
    "decision.capped": ("（过于常见，不计：{v}）", " (not counted, too common: {v})"),
    "decision.also": ("；另与客户 {v} 共享标识", "; also shares an identifier with {v}"),
    "nothing": ("无证据", "no evidence"),
}
# As the issue writes it: "姓名相同（拼音）+ 同公司邮箱域名 abc.com".
_JOIN = {"zh": ("+ ", "；"), "en": (" + ", "; ")}


class Explained(Protocol):
    code: str
    args: tuple[tuple[str, str], ...]
    weight: float


def text(code: str, lang: str, args: Mapping[str, object] | Iterable[tuple[str, object]] = ()) -> str:
    zh, en = TEXTS[code]
    template = zh if lang == "zh" else en
    values = dict(args)
    return template.format(**{k: values.get(k, "") for k in ("a", "b", "v", "n")})


def sentence(evidence: Iterable[Explained], lang: str) -> str:
    """Positive evidence joined by "+", then what weighed against or was not counted."""
    plus, semi = _JOIN["zh" if lang == "zh" else "en"]
    pros: list[str] = []
    cons: list[str] = []
    for e in evidence:
        if not e.code:
            continue
        (pros if e.weight > 0 else cons).append(text(e.code, lang, e.args))
    out = plus.join(dict.fromkeys(pros))
    if cons:
        out = (out + semi if out else "") + semi.join(dict.fromkeys(cons))
    return out or text("nothing", lang)
