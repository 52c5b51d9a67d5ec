"""Matching: is this contact a customer we already have?

Strong identifiers (mobile, unionid, external_userid, dingtalk id, a personal email, id number)
decide: one shared value and it is the same customer. Weaker evidence (name, company, company mail
domain, a direct landline, address, city, an ID number one character apart) is compared field by
field into levels and weighed by Fellegi–Sunter (scoring.py): the score is the probability that the
two are one person. At or above `auto_threshold` the pair is linked or merged without asking; at
or above `possible_threshold` it is a "possible duplicate" for a person to confirm, with its reason.

Rules no weight overrides: a criterion shared by too many records (a switchboard, a name carried
by 30 customers) stops counting; a role mailbox (sales@, hr@) is never a person's identity; two
different ID numbers or unionids are two people; names that differ are colleagues; an honorific
alone (张总), a name alone, or a nationally common name (张伟) with nothing but company evidence is
a suggestion at most. Every decision carries its evidence, and its reason in Chinese and English.

Pure code: no database here. Candidates come from an IdentityIndex (in memory) or from the SQL
source in service.py; both hand this module Records and a frequency function.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Iterator, Mapping, Sequence

from rapidfuzz.distance import Indel, Levenshtein

from identity import reasons
from identity.company import company_key, normalize_company
from identity.names import (EMPTY_NAME, NameInfo, is_common_name, mailbox_from_name, name_similarity,
                                       parse_name)
from identity.normalize import (FREE_MAIL_DOMAINS, cn_id_checksum_ok, is_role_mailbox, normalize_address, normalize_city,
                                           normalize_email, normalize_exact, normalize_id_number,
                                           parse_phone, parse_phones)
from identity.scoring import DEFAULT_MODEL, FIELDS, FSModel
from leadbot.masking import mask_phone

SAME, POSSIBLE, NEW = "same", "possible", "new"
# Index kinds of the strong identifiers; "mobile" is the identity kind "phone" with strong=True.
STRONG_INDEX_KINDS = ("unionid", "external_userid", "dingtalk_id", "id_number", "mobile", "email")
_PRIORITY = {k: len(STRONG_INDEX_KINDS) - i for i, k in enumerate(STRONG_INDEX_KINDS)}
# One person has one of these: two different values mean two people.
SINGLE_VALUED = ("unionid", "id_number")

Id = Hashable


@dataclass(frozen=True, slots=True)
class MatchConfig:
    possible_threshold: float = 0.5  # P(same person) at or above: suggest "possible duplicate"
    # At or above: linked / merged without asking (live and batch). Set on the tune split of
    # tests/identity/data/b2b_cn.csv as the lowest bar keeping automatic links at precision >= 0.99
    # (bench/identity_quality.py); the weights are not independent (a name and a company mail
    # domain agree together), so the posterior is conservative and the bar sits below 0.99.
    auto_threshold: float = 0.7
    # Live matching (a new friend, a lead, an imported row) links on weak evidence only at this
    # calibrated probability; under it the pair is a suggestion a person confirms on a card.
    live_auto_threshold: float = 0.99
    name_gate: float = 0.7  # names less alike than this: two people, whatever else agrees
    weak_name_max: float = 0.79  # an honorific-only name (张总) is never judged "same" on its own
    name_only_max: float = 0.45  # a name and nothing else: not even a suggestion
    # Frequency caps: a value carried by more records than this stops counting as evidence.
    strong_cap: int = 3  # e.g. a rep's own mobile typed into every customer of an export
    landline_cap: int = 3  # a switchboard
    name_cap: int = 30  # 张伟, 王芳
    company_cap: int = 5000
    domain_cap: int = 5000
    address_cap: int = 10  # a business-centre address shared by many companies
    # Candidate generation: blocks up to block_limit are read whole; larger ones only through
    # their intersection with another block.
    block_limit: int = 200
    intersect_limit: int = 60_000
    max_candidates: int = 2000

    @property
    def batch_threshold(self) -> float:
        """`leadbot dedupe` judges a pair the same customer at the same bar live matching links at."""
        return self.auto_threshold


DEFAULT_CONFIG = MatchConfig()


@dataclass(slots=True)
class Record:
    """The comparable features of one customer, CSV row or incoming contact."""

    id: Id
    name: NameInfo = EMPTY_NAME
    company: str = ""
    company_key: str = ""
    mobiles: tuple[str, ...] = ()
    landlines: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    unionids: tuple[str, ...] = ()
    external_userids: tuple[str, ...] = ()
    dingtalk_ids: tuple[str, ...] = ()
    id_numbers: tuple[str, ...] = ()
    address: str = ""
    city: str = ""
    role_emails: tuple[str, ...] = ()  # sales@, info@: the company's, never one person's
    masked_mobiles: tuple[str, ...] = ()  # "138****5678" as a rep types it into a remark

    def strong_keys(self) -> Iterator[tuple[str, str]]:
        for kind, values in (("unionid", self.unionids), ("external_userid", self.external_userids),
                             ("dingtalk_id", self.dingtalk_ids), ("id_number", self.id_numbers),
                             ("mobile", self.mobiles), ("email", self.emails)):
            for value in values:
                yield kind, value

    def values(self, kind: str) -> tuple[str, ...]:
        return {"unionid": self.unionids, "external_userid": self.external_userids,
                "dingtalk_id": self.dingtalk_ids, "id_number": self.id_numbers,
                "mobile": self.mobiles, "email": self.emails}[kind]

    def block_keys(self) -> Iterator[tuple[str, str]]:
        if self.name.key and not self.name.weak:
            yield "name", self.name.key
            if not self.name.han:
                for token in self.name.tokens:
                    if len(token) >= 3:
                        yield "token", token
        if self.company_key:
            yield "company", self.company_key
        for domain in self.domains:
            yield "domain", domain
        for masked in self.masked_mobiles:
            yield "mobile_mask", masked
        for mobile in self.mobiles:
            yield "mobile_mask", mask_mobile(mobile)
        for value in self.id_numbers:
            # Halves of an ID number: one mistyped character still meets its twin in one half.
            if len(value) >= 6:
                half = len(value) // 2
                yield "id_part", "a" + value[:half]
                yield "id_part", "b" + value[half:]
        for landline in self.landlines:
            yield "landline", landline
        if self.address:
            yield "address", self.address


def _uniq(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _as_list(value: Any) -> Sequence[str]:
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    return value


_intern = sys.intern


def _corporate(mail: str) -> str:
    domain = mail.rpartition("@")[2]
    return "" if domain in FREE_MAIL_DOMAINS else domain


_MASKED_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)[*＊xX]{4}(\d{4})(?!\d)")


def mask_mobile(e164: str) -> str:
    """+8613812345678 -> 138****5678, the form a masked remark or card shows."""
    digits = e164[3:] if e164.startswith("+86") else e164
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) == 11 else ""


def build_record(id: Id, *, name: str = "", company: str = "", phones: Any = (), emails: Any = (),
                 unionids: Any = (), external_userids: Any = (), dingtalk_ids: Any = (),
                 id_numbers: Any = (), address: str = "", city: str = "") -> Record:
    """Features from raw, as-written values (a CSV row, a WeCom contact, a lead)."""
    mobiles: list[str] = []
    landlines: list[str] = []
    masked: list[str] = []
    for raw in _as_list(phones):
        if raw and "*" in raw:
            masked += [m.group(1) + "****" + m.group(2) for m in _MASKED_MOBILE.finditer(raw)]
        if raw and len(raw) == 11 and raw.isdigit():
            phone = parse_phone(raw)  # the common case: a plain mobile, one field one number
            if phone:
                (mobiles if phone.strong else landlines).append(phone.e164)
                continue
        for phone in parse_phones(raw)[0]:
            (mobiles if phone.strong else landlines).append(phone.e164)
    all_mails = _uniq([normalize_email(e) for e in _as_list(emails)]) if emails else ()
    mails = tuple(m for m in all_mails if not is_role_mailbox(m))
    roles = tuple(m for m in all_mails if m not in mails)
    domains = _uniq([_intern(d) for d in (_corporate(e) for e in all_mails) if d]) if all_mails else ()
    return Record(
        id, parse_name(name) if name else EMPTY_NAME, normalize_company(company) if company else "",
        company_key(company) if company else "",
        tuple(dict.fromkeys(mobiles)) if mobiles else (), tuple(dict.fromkeys(landlines)) if landlines else (),
        mails, domains,
        _uniq([normalize_exact(v) for v in _as_list(unionids)]) if unionids else (),
        _uniq([normalize_exact(v) for v in _as_list(external_userids)]) if external_userids else (),
        _uniq([normalize_exact(v) for v in _as_list(dingtalk_ids)]) if dingtalk_ids else (),
        _uniq([normalize_id_number(v) for v in _as_list(id_numbers)]) if id_numbers else (),
        _intern(normalize_address(address)) if address else "", _intern(normalize_city(city)) if city else "",
        roles, tuple(dict.fromkeys(masked)))


def record_from_identities(id: Id, *, name: str = "", company: str = "", address: str = "", city: str = "",
                           identities: Iterable[tuple[str, str, bool]] = ()) -> Record:
    """Features of a stored customer: identities are (kind, normalised value, strong)."""
    buckets: dict[str, list[str]] = {}
    for kind, value, strong in identities:
        if kind == "phone":
            kind = "mobile" if strong else "landline"
        buckets.setdefault(kind, []).append(value)
    all_mails = _uniq(buckets.get("email", ()))
    emails = tuple(m for m in all_mails if not is_role_mailbox(m))
    return Record(
        id=id, name=parse_name(name), company=normalize_company(company), company_key=company_key(company),
        mobiles=_uniq(buckets.get("mobile", ())), landlines=_uniq(buckets.get("landline", ())),
        emails=emails, domains=_uniq(_corporate(e) for e in all_mails),
        role_emails=tuple(m for m in all_mails if m not in emails),
        unionids=_uniq(buckets.get("unionid", ())), external_userids=_uniq(buckets.get("external_userid", ())),
        dingtalk_ids=_uniq(buckets.get("dingtalk_id", ())), id_numbers=_uniq(buckets.get("id_number", ())),
        address=sys.intern(normalize_address(address)), city=sys.intern(normalize_city(city)))


@dataclass(frozen=True, slots=True)
class Evidence:
    """One criterion's contribution: its similarity 0..1 and its Fellegi–Sunter weight log2(m/u)
    (negative against; 0 when capped or only explaining). code and args render the reason in a
    language (reasons.py); strong: a shared strong identifier, which decides on its own."""

    field: str
    score: float
    weight: float
    detail: str = ""
    code: str = ""
    args: tuple[tuple[str, str], ...] = ()
    strong: bool = False

    @property
    def points(self) -> float:
        return self.score * self.weight

    def describe(self, lang: str = "en") -> str:
        if self.code:
            return reasons.text(self.code, lang, self.args)
        return f"{self.field} ({self.detail})" if self.detail else self.field


@dataclass(frozen=True, slots=True)
class Candidate:
    customer_id: Id
    kind: str  # same | possible | new (below threshold, kept only to explain)
    score: float
    evidence: tuple[Evidence, ...]

    @property
    def reason(self) -> str:
        return self.reason_in("en")

    def reason_in(self, lang: str) -> str:
        return reasons.sentence(self.evidence, lang)


@dataclass(frozen=True, slots=True)
class MatchDecision:
    kind: str  # same | possible | new
    customer_id: Id | None
    score: float
    reason: str  # English
    evidence: tuple[Evidence, ...] = ()
    candidates: tuple[Candidate, ...] = ()  # possible duplicates, best first (incl. the chosen one)
    capped: tuple[str, ...] = ()  # criteria that matched too many records to count
    reason_zh: str = ""

    def reason_in(self, lang: str) -> str:
        return self.reason_zh if lang == "zh" and self.reason_zh else self.reason

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "customer_id": self.customer_id, "score": round(self.score, 3),
            "reason": self.reason, "reason_zh": self.reason_zh, "capped": list(self.capped),
            "candidates": [{"customer_id": c.customer_id, "kind": c.kind, "score": round(c.score, 3),
                            "reason": c.reason, "reason_zh": c.reason_in("zh")} for c in self.candidates],
        }


Freq = Callable[[str, str], int]


def mask_value(kind: str, value: str) -> str:
    """Evidence ends up in cards, logs and audit rows: never a full phone, mail or id number."""
    if kind in ("mobile", "landline", "phone"):
        return mask_phone(value[3:] if value.startswith("+86") else value)
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if kind == "id_number":
        return f"{value[:3]}***{value[-2:]}" if len(value) > 6 else "***"
    return f"{value[:4]}…" if len(value) > 8 else value


def _one_edit_apart(a: str, b: str) -> bool:
    return Levenshtein.distance(a, b) <= 1 or (len(a) == len(b) and sorted(a) == sorted(b)
                                                 and sum(x != y for x, y in zip(a, b)) == 2)


def company_similarity(a: Record, b: Record) -> tuple[float, str]:
    if not a.company or not b.company:
        return 0.0, ""
    if a.company == b.company:
        return 1.0, f"{a.company}"
    if a.company_key and a.company_key == b.company_key:
        return 0.95, f"{a.company}≈{b.company}"
    shorter, longer = sorted((a.company, b.company), key=len)
    if len(shorter) >= 2 and longer.startswith(shorter):
        return 0.85, f"{a.company}≈{b.company}"
    sim = Indel.normalized_similarity(a.company, b.company)
    if a.company_key and b.company_key:
        sim = max(sim, Indel.normalized_similarity(a.company_key, b.company_key) * 0.95)
    return sim, f"{a.company}~{b.company}"


_DIGIT_RUNS = re.compile(r"\d+")


def address_similarity(a: str, b: str) -> float:
    """Normalised addresses: edit similarity, containment (one writer adds the district, the other
    does not), and house numbers, which must agree: 张江路88号 is not 张江路99号."""
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    sim = Indel.normalized_similarity(a, b)
    shorter, longer = sorted((a, b), key=len)
    if len(shorter) >= 8 and shorter in longer:
        sim = max(sim, 0.9)
    na, nb = set(_DIGIT_RUNS.findall(a)), set(_DIGIT_RUNS.findall(b))
    if na and nb and na != nb:
        sim *= 0.9 if na & nb else 0.6
    return sim


# Evidence that two records are two people whatever else agrees.
CONFLICT_CODES = frozenset({"id_number.differ", "unionid.differ"})
_NAME_LEVEL = {"differ": 1, "surname": 2, "similar": 3, "pinyin": 4, "same": 5}
_FIELD_INDEX = {f: i for i, f in enumerate(FIELDS)}
_TLD_PARTS = frozenset({"com", "cn", "net", "org", "gov", "edu", "co", "ltd", "biz", "info", "io", "hk", "tw"})
# Evidence that belongs to one person, not to a company: what a common name needs beside it. A
# mailbox built from the name is not: 王芳's namesake at the company gets wangfang2@ or fang.wang@.
# Nor is an address: in B2B data it is the company's, which colleagues share.
_PERSONAL = frozenset({"mobile.same", "mobile.masked", "landline.same", "id_number.typo", "id_number.same"})


def _domain_label(domain: str) -> str:
    """The name a company registered: abc.com.cn -> abc, mail.huawei.com -> huawei."""
    parts = [p for p in domain.split(".") if p]
    while len(parts) > 1 and parts[-1] in _TLD_PARTS:
        parts.pop()
    return parts[-1] if parts else ""


def domain_names_company(domain: str, company_key_: str) -> bool:
    """huawei.com beside 华为技术有限公司 (key "huawei"), abc.com beside ABC科技(上海)有限公司."""
    label = _domain_label(domain).replace("-", "").rstrip("0123456789")
    company_key_ = company_key_.rstrip("0123456789")
    if len(label) < 3 or not company_key_:
        return False
    return label == company_key_ or (len(company_key_) >= 3 and (label.startswith(company_key_)
                                                                or company_key_.startswith(label)))


def _ids_agree(a: Record, b: Record) -> bool:
    return bool(a.id_numbers and b.id_numbers) and (bool(set(a.id_numbers) & set(b.id_numbers)) or any(
        _one_edit_apart(x, y) for x in a.id_numbers for y in b.id_numbers))


def _name_level(score: float, why: str, a: NameInfo, b: NameInfo) -> tuple[int, str]:
    if why.startswith("surname only"):
        return _NAME_LEVEL["surname"], "name.surname"
    if score < 0.7:
        return _NAME_LEVEL["differ"], "name.differ"
    if why == "same name":
        if a.tokens != b.tokens and not (a.han and b.han):
            return _NAME_LEVEL["same"], "name.order"
        return _NAME_LEVEL["same"], "name.same"
    if why == "same name in pinyin":
        han, latin = (a, b) if a.han else (b, a)
        if "".join(latin.tokens) == "".join(han.tokens):
            return _NAME_LEVEL["same"], "name.pinyin"
        return _NAME_LEVEL["same"], "name.order"
    if why == "same pinyin, other characters":
        return _NAME_LEVEL["pinyin"], "name.homophone"
    if why == "part of the name":
        return _NAME_LEVEL["similar"], "name.part"
    if score >= 0.84:
        return _NAME_LEVEL["pinyin"], "name.typo"
    return _NAME_LEVEL["similar"], "name.typo"


class Matcher:
    def __init__(self, config: MatchConfig | None = None, model: FSModel | None = None) -> None:
        self.config = config or DEFAULT_CONFIG
        self.model = model or DEFAULT_MODEL

    def agreeing_holders(self, probe: Record, holders: Sequence[Record]) -> list[Id]:
        """A strong value on more than strong_cap records: a rep's own mobile typed into every row
        (each under another name) counts for nobody; one person entered five times (one name,
        spelled five ways) still counts for the records whose name or address agrees."""
        agreeing = [h.id for h in holders if h.id != probe.id and (
            not probe.name.present or not h.name.present or probe.name.weak or h.name.weak
            or name_similarity(probe.name, h.name)[0] >= self.config.name_gate
            or address_similarity(probe.address, h.address) >= 0.75)]
        disagreeing = sum(1 for h in holders if h.id != probe.id) - len(agreeing)
        return agreeing if disagreeing <= self.config.strong_cap else []

    # ---- one pair ----------------------------------------------------------------------------

    def compare(self, probe: Record, cand: Record, freq: Freq) -> tuple[list[int], list[Evidence], list[str]]:
        """The pair's level per field (scoring.FIELDS order, 0 = nothing to compare), the evidence
        behind each level (weights not yet known), and the criteria capped by frequency."""
        c = self.config
        vec = [0] * len(FIELDS)
        ev: list[Evidence] = []
        capped: list[str] = []
        pn, cn = probe.name, cand.name

        def put(name: str, level: int, score: float, code: str, *args: tuple[str, str], detail: str = "") -> None:
            vec[_FIELD_INDEX[name]] = level
            ev.append(Evidence(name, score, 0.0, detail, code, tuple(args)))

        # name
        s_name, why = name_similarity(pn, cn)
        if pn.present and cn.present:
            level, code = _name_level(s_name, why, pn, cn)
            count = freq("name", pn.key) if pn.key else 0
            if count > c.name_cap:
                capped.append("name")
                ev.append(Evidence("name", s_name, 0.0, why, "name.common_capped", (("n", str(count)),)))
            else:
                put("name", level, s_name, code, ("a", pn.display), ("b", cn.display), detail=why)
        # company, or the company a mail domain names
        s_comp, comp_detail = company_similarity(probe, cand)
        if probe.company and cand.company:
            if probe.company_key and freq("company", probe.company_key) > c.company_cap:
                capped.append("company")
                ev.append(Evidence("company", s_comp, 0.0, comp_detail, "company.capped"))
            elif s_comp >= 0.95:
                code = "company.same" if probe.company == cand.company else "company.variant"
                put("company", 3, s_comp, code, ("a", probe.company), ("b", cand.company), detail=comp_detail)
            elif s_comp >= 0.8:
                put("company", 2, s_comp, "company.variant", ("a", probe.company), ("b", cand.company),
                    detail=comp_detail)
            elif s_comp < 0.5:
                put("company", 1, s_comp, "company.differ", ("a", probe.company), ("b", cand.company),
                    detail=comp_detail)
        if vec[_FIELD_INDEX["company"]] <= 1 and "company" not in capped:
            # No company on one side, or two spellings that do not meet (博远精密机械 / Boyuan
            # Precision Machinery): a mail domain may name the other side's company.
            for rec, other in ((probe, cand), (cand, probe)):
                named = next((d for d in rec.domains if domain_names_company(d, other.company_key)), "")
                if named:
                    if vec[_FIELD_INDEX["company"]]:
                        ev[:] = [e for e in ev if e.field != "company"]
                    put("company", 2, 0.9, "company.domain", ("a", other.company or "?"), ("b", named))
                    break
        # company mail domain (role mailboxes count here: they name the company)
        shared_domains = set(probe.domains) & set(cand.domains)
        if shared_domains:
            domain = min(shared_domains)
            if freq("domain", domain) > c.domain_cap:
                capped.append("email_domain")
                ev.append(Evidence("domain", 1.0, 0.0, domain, "domain.capped", (("v", domain),)))
            else:
                put("domain", 2, 1.0, "domain.same", ("v", domain), detail=domain)
        elif probe.domains and cand.domains:
            put("domain", 1, 0.0, "domain.differ")
        # personal mailboxes at that domain
        if shared_domains and probe.emails and cand.emails:
            mine = [e for e in probe.emails if e.rpartition("@")[2] in shared_domains]
            theirs = [e for e in cand.emails if e.rpartition("@")[2] in shared_domains]
            if mine and theirs and not set(mine) & set(theirs):
                a, b = mine[0].partition("@")[0], theirs[0].partition("@")[0]
                letters_a, letters_b = "".join(ch for ch in a if ch.isalpha()), "".join(ch for ch in b if ch.isalpha())
                digits_a, digits_b = "".join(ch for ch in a if ch.isdigit()), "".join(ch for ch in b if ch.isdigit())
                from_name = all(any(mailbox_from_name(local, n) for n in (pn, cn) if n.present) for local in (a, b))
                # huang.minhong@ and huangminhong@ differ in a dot only; zhangwei@ and zhangwei2@ in
                # the number a mail system gives a second 张伟.
                if from_name and (letters_a != letters_b or digits_a == digits_b):
                    put("email", 2, 1.0, "email.from_name", ("a", mine[0]), ("b", theirs[0]))
                else:
                    # zhangwei@ and zhangwei2@: the mail system told two namesakes apart.
                    put("email", 1, 1.0, "email.conflict")
        shared_roles = set(probe.role_emails) & set(cand.role_emails)
        if shared_roles:
            ev.append(Evidence("email", 1.0, 0.0, "", "email.role", (("v", min(shared_roles)),)))
        # phones
        if probe.mobiles and cand.mobiles:
            if set(probe.mobiles) & set(cand.mobiles):
                vec[_FIELD_INDEX["mobile"]] = 3
            else:
                put("mobile", 1, 1.0, "mobile.differ")
        elif (probe.masked_mobiles and (cand.mobiles or cand.masked_mobiles)) or (cand.masked_mobiles and probe.mobiles):
            mine = set(probe.masked_mobiles) | {mask_mobile(m) for m in probe.mobiles}
            theirs = set(cand.masked_mobiles) | {mask_mobile(m) for m in cand.mobiles}
            shared = mine & theirs
            if shared:
                put("mobile", 2, 0.9, "mobile.masked", ("v", min(shared)))
            else:
                put("mobile", 1, 1.0, "mobile.differ")
        shared_lines = set(probe.landlines) & set(cand.landlines)
        if shared_lines:
            line = min(shared_lines)
            count = freq("landline", line)
            masked = mask_value("landline", line)
            if count > c.landline_cap:
                capped.append("landline")
                ev.append(Evidence("landline", 1.0, 0.0, "switchboard", "landline.switchboard",
                                   (("v", masked), ("n", str(count)))))
            else:
                put("landline", 1, 1.0, "landline.same", ("v", masked), detail="direct line")
        # places
        if probe.address and cand.address:
            s_addr = address_similarity(probe.address, cand.address)
            count = freq("address", probe.address) if s_addr >= 0.75 else 0
            if count > c.address_cap:
                capped.append("address")
                ev.append(Evidence("address", s_addr, 0.0, "", "address.capped", (("n", str(count)),)))
            elif s_addr >= 0.9:
                put("address", 3, s_addr, "address.same")
            elif s_addr >= 0.75:
                put("address", 2, s_addr, "address.similar")
            elif s_addr < 0.5:
                put("address", 1, s_addr, "address.differ")
        if probe.city and cand.city:
            if probe.city == cand.city or (min(len(probe.city), len(cand.city)) >= 5
                                           and _one_edit_apart(probe.city, cand.city)):
                put("city", 2, 1.0, "city.same", ("v", cand.city))
            else:
                put("city", 1, 0.0, "city.differ")
        # identifiers one person has one of
        if probe.id_numbers and cand.id_numbers:
            if set(probe.id_numbers) & set(cand.id_numbers):
                vec[_FIELD_INDEX["id_number"]] = 3
            elif any(_one_edit_apart(a, b) for a in probe.id_numbers for b in cand.id_numbers):
                put("id_number", 2, 0.9, "id_number.typo")
            elif all(cn_id_checksum_ok(v) for v in probe.id_numbers + cand.id_numbers):
                # Resident IDs whose check digits hold were not mistyped: two people.
                put("id_number", 1, 1.0, "id_number.differ")
            else:
                # Other document numbers (a passport, FEBRL's social security ids) carry no check
                # digit: a difference weighs against, as a typo-prone field does, without a veto.
                put("id_number", 1, 1.0, "id_number.other")
        if probe.unionids and cand.unionids and not set(probe.unionids) & set(cand.unionids):
            ev.append(Evidence("unionid", 1.0, -99.0, "", "unionid.differ"))
        return vec, ev, capped

    def judge(self, probe: Record, cand: Record, vec: Sequence[int], ev: list[Evidence],
              capped: Sequence[str], model: FSModel | None = None) -> tuple[float, list[Evidence]]:
        """The probability for a compared pair, the evidence weighed, and the rules applied."""
        c = self.config
        model = model or self.model
        weighed: list[Evidence] = []
        for e in ev:
            if e.field in _FIELD_INDEX and vec[_FIELD_INDEX[e.field]] and e.weight == 0.0 and e.code not in (
                    "name.common_capped", "company.capped", "domain.capped", "landline.switchboard",
                    "address.capped", "email.role"):
                e = Evidence(e.field, e.score, round(model.weight(e.field, vec[_FIELD_INDEX[e.field]]), 2),
                             e.detail, e.code, e.args)
            weighed.append(e)
        p = model.probability(model.total(tuple(vec)))
        codes = {e.code for e in weighed if e.weight > 0}
        conflict = any(e.code in CONFLICT_CODES for e in weighed)
        if conflict:
            p = 0.0
        pn, cn = probe.name, cand.name
        named = pn.present and cn.present
        id_agrees = vec[_FIELD_INDEX["id_number"]] >= 2  # the same ID number, or one character apart
        if named and vec[_FIELD_INDEX["name"]] == _NAME_LEVEL["differ"] and not id_agrees:
            # Same company, same switchboard, another name: a colleague, not a duplicate.
            weighed.append(Evidence("name_gate", 1.0, 0.0, "", "name.gate"))
            p = min(p / 2, c.possible_threshold * 0.9)
        below_auto = c.auto_threshold - 0.01
        # An honorific (张工) is a suggestion at most, unless a masked mobile agrees (张工-138****5678).
        if (pn.weak or cn.weak) and "mobile.masked" not in codes and p > min(c.weak_name_max, below_auto):
            weighed.append(Evidence("name_weak", 1.0, 0.0, "", "name.weak_cap"))
            p = min(c.weak_name_max, below_auto)
        if "name" in capped and p > below_auto:
            p = below_auto  # a name 30 customers carry: never merged on weak evidence
        elif (is_common_name(pn) or is_common_name(cn)) and not codes & _PERSONAL and p > below_auto:
            weighed.append(Evidence("name_common", 1.0, 0.0, "", "name.common"))
            p = below_auto
        if p > c.name_only_max and not (codes - {"name.same", "name.pinyin", "name.order", "name.homophone",
                                                 "name.typo", "name.part", "name.surname", "city.same"}):
            p = c.name_only_max  # a name (and a city) alone: not even a suggestion
        return p, weighed

    def score(self, probe: Record, cand: Record, freq: Freq,
              explain: bool = False) -> tuple[float, list[Evidence], list[str]]:
        """Weak-evidence probability of a pair, its evidence, and the criteria capped by frequency.

        Two clearly different names end the comparison early (a colleague) unless explain is set,
        as it is for pairs that share a strong identifier."""
        if not explain and probe.name.present and cand.name.present and not (probe.name.weak or cand.name.weak):
            s_name, _ = name_similarity(probe.name, cand.name)
            if s_name < self.config.name_gate and not _ids_agree(probe, cand):
                return 0.0, [Evidence("name", s_name, 0.0, "", "name.differ",
                                      (("a", probe.name.display), ("b", cand.name.display)))], []
        vec, ev, capped = self.compare(probe, cand, freq)
        p, weighed = self.judge(probe, cand, vec, ev, capped)
        return p, weighed, capped

    # ---- one probe against its candidates ------------------------------------------------------

    def decide(self, probe: Record, *, strong_hits: Mapping[Id, Sequence[tuple[str, str]]],
               records: Mapping[Id, Record], freq: Freq,
               is_distinct: Callable[[Id, Id], bool] | None = None,
               strong_capped: Sequence[str] = ()) -> MatchDecision:
        """strong_hits: customer id -> the (kind, value) strong identifiers it shares with the probe;
        records: every candidate's features (strong hits included)."""
        c = self.config
        capped: set[str] = set(strong_capped)
        scored: list[Candidate] = []
        # Strong: the customer sharing the highest-priority identifier wins; others sharing
        # another strong identifier are reported as possible duplicates of each other.
        strong: list[tuple[tuple[int, int], Candidate]] = []
        for cid, hits in strong_hits.items():
            if cid == probe.id or cid not in records:
                continue
            weak_score, weak_ev, weak_capped = self.score(probe, records[cid], freq, explain=True)
            capped.update(weak_capped)
            conflicts = [e for e in weak_ev if e.code in CONFLICT_CODES]
            strong_ev = [Evidence(kind, 1.0, 1.0, f"same {kind} {mask_value(kind, value)}", f"strong.{kind}",
                                  (("v", mask_value(kind, value)),), strong=True) for kind, value in hits]
            evidence = tuple(strong_ev + [e for e in weak_ev if e.field not in ("name_gate",)])
            kind = POSSIBLE if conflicts else SAME
            cand = Candidate(cid, kind, 1.0 if kind == SAME else max(weak_score, c.possible_threshold), evidence)
            strong.append(((max(_PRIORITY.get(k, 0) for k, _ in hits), len(hits)), cand))
        if strong:
            strong.sort(key=lambda t: t[0], reverse=True)
            sames = [cand for _, cand in strong if cand.kind == SAME]
            others = tuple(Candidate(cand.customer_id, POSSIBLE, cand.score, cand.evidence)
                           for _, cand in strong if not sames or cand is not sames[0])
            if sames:
                best = sames[0]
                texts = {lang: reasons.sentence([e for e in best.evidence if e.strong], lang) for lang in reasons.LANGS}
                if others:
                    also = ", ".join(str(o.customer_id) for o in others)
                    texts = {lang: t + reasons.text("decision.also", lang, {"v": also}) for lang, t in texts.items()}
                return MatchDecision(SAME, best.customer_id, 1.0, texts["en"], best.evidence, (best,) + others,
                                     tuple(sorted(capped)), texts["zh"])
            scored.extend(others)
        for cid, rec in records.items():
            if cid == probe.id or cid in strong_hits:
                continue
            score, ev, weak_capped = self.score(probe, rec, freq)
            capped.update(weak_capped)
            if score <= 0:
                continue
            kind = SAME if score >= c.live_auto_threshold else POSSIBLE if score >= c.possible_threshold else NEW
            scored.append(Candidate(cid, kind, score, tuple(ev)))
        if is_distinct is not None and probe.id is not None:
            scored = [s for s in scored if not is_distinct(probe.id, s.customer_id)]
        scored.sort(key=lambda s: s.score, reverse=True)
        possibles = tuple(s for s in scored if s.kind != NEW)[:5]
        if possibles:
            best = possibles[0]
            if best.kind == SAME:
                texts = {lang: best.reason_in(lang) for lang in reasons.LANGS}
                return MatchDecision(SAME, best.customer_id, best.score, texts["en"], best.evidence, possibles,
                                     tuple(sorted(capped)), texts["zh"])
            texts = {lang: reasons.text("decision.possible", lang, {"v": best.customer_id, "n": f"{best.score:.2f}"})
                     + best.reason_in(lang) for lang in reasons.LANGS}
            return MatchDecision(POSSIBLE, best.customer_id, best.score, texts["en"], best.evidence, possibles,
                                 tuple(sorted(capped)), texts["zh"])
        if scored:
            best = scored[0]
            texts = {lang: reasons.text("decision.new_best", lang, {"v": best.customer_id, "n": f"{best.score:.2f}"})
                     + best.reason_in(lang) for lang in reasons.LANGS}
            return MatchDecision(NEW, None, best.score, texts["en"], best.evidence, (), tuple(sorted(capped)),
                                 texts["zh"])
        texts = {lang: reasons.text("decision.new_none", lang) for lang in reasons.LANGS}
        if capped:
            texts = {lang: t + reasons.text("decision.capped", lang, {"v": ", ".join(sorted(capped))})
                     for lang, t in texts.items()}
        return MatchDecision(NEW, None, 0.0, texts["en"], (), (), tuple(sorted(capped)), texts["zh"])


def decision_summary(decision: MatchDecision) -> dict[str, Any]:
    """Small JSON for attributes, audit rows and cards."""
    return {"kind": decision.kind, "customer_id": decision.customer_id, "score": round(decision.score, 3),
            "reason": decision.reason[:500], "reason_zh": decision.reason_zh[:500]}


__all__ = ["SAME", "POSSIBLE", "NEW", "MatchConfig", "DEFAULT_CONFIG", "Record", "Evidence", "Candidate",
           "MatchDecision", "Matcher", "build_record", "record_from_identities", "mask_value",
           "company_similarity", "decision_summary", "mask_mobile", "domain_names_company", "SINGLE_VALUED", "CONFLICT_CODES"]
