"""Matching: is this contact a customer we already have?

Strong identifiers (mobile, unionid, external_userid, dingtalk id, email, id number) decide: one
shared value and it is the same customer. Weaker evidence (name with company, email domain,
a direct landline, address) is scored; above `possible_threshold` it becomes a "possible
duplicate" for a person to confirm, never an automatic link. A criterion shared by too many
records (a switchboard number, a name like 张伟) stops counting as evidence. Every decision carries
its evidence: which field, which score, which weight.

Pure code: no database here. Candidates come from an IdentityIndex (in memory) or from the SQL
source in service.py; both hand this module Records and a frequency function.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Iterator, Mapping, Sequence

from rapidfuzz.distance import Indel, Levenshtein

from crm_bridge.identity.company import company_key, normalize_company
from crm_bridge.identity.names import EMPTY_NAME, NameInfo, name_similarity, parse_name
from crm_bridge.identity.normalize import (FREE_MAIL_DOMAINS, corporate_domain, normalize_address, normalize_city,
                                           normalize_email, normalize_exact, normalize_id_number,
                                           parse_phone, parse_phones)
from leadbot.masking import mask_phone

SAME, POSSIBLE, NEW = "same", "possible", "new"
# Index kinds of the strong identifiers; "mobile" is the identity kind "phone" with strong=True.
STRONG_INDEX_KINDS = ("unionid", "external_userid", "dingtalk_id", "id_number", "mobile", "email")
_PRIORITY = {k: len(STRONG_INDEX_KINDS) - i for i, k in enumerate(STRONG_INDEX_KINDS)}
# One person has one of these: two different values mean two people.
_SINGLE_VALUED = ("unionid", "id_number")

Id = Hashable


@dataclass(frozen=True, slots=True)
class MatchConfig:
    possible_threshold: float = 0.75  # weak evidence at or above: suggest "possible duplicate"
    batch_threshold: float = 0.8  # `leadbot dedupe`: weak evidence judged "same"
    name_gate: float = 0.7  # names less alike than this: two people, whatever else agrees
    w_name: float = 0.5
    w_company: float = 0.35
    w_domain: float = 0.3
    w_org_both: float = 0.05
    w_landline: float = 0.35
    w_address: float = 0.4
    address_min: float = 0.75  # address similarity below this is no evidence
    w_city: float = 0.05
    company_mismatch_penalty: float = 0.1
    mobile_conflict_penalty: float = 0.2
    email_conflict_penalty: float = 0.2  # two different addresses at one employer's domain
    weak_name_max: float = 0.79  # an honorific-only name (张总) is never judged "same" on its own
    single_value_conflict_penalty: float = 1.0
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


def build_record(id: Id, *, name: str = "", company: str = "", phones: Any = (), emails: Any = (),
                 unionids: Any = (), external_userids: Any = (), dingtalk_ids: Any = (),
                 id_numbers: Any = (), address: str = "", city: str = "") -> Record:
    """Features from raw, as-written values (a CSV row, a WeCom contact, a lead)."""
    mobiles: list[str] = []
    landlines: list[str] = []
    for raw in _as_list(phones):
        if raw and len(raw) == 11 and raw.isdigit():
            phone = parse_phone(raw)  # the common case: a plain mobile, one field one number
            if phone:
                (mobiles if phone.strong else landlines).append(phone.e164)
                continue
        for phone in parse_phones(raw)[0]:
            (mobiles if phone.strong else landlines).append(phone.e164)
    mails = _uniq([normalize_email(e) for e in _as_list(emails)]) if emails else ()
    domains = _uniq([_intern(d) for d in (_corporate(e) for e in mails) if d]) if mails else ()
    return Record(
        id, parse_name(name) if name else EMPTY_NAME, normalize_company(company) if company else "",
        company_key(company) if company else "",
        tuple(dict.fromkeys(mobiles)) if mobiles else (), tuple(dict.fromkeys(landlines)) if landlines else (),
        mails, domains,
        _uniq([normalize_exact(v) for v in _as_list(unionids)]) if unionids else (),
        _uniq([normalize_exact(v) for v in _as_list(external_userids)]) if external_userids else (),
        _uniq([normalize_exact(v) for v in _as_list(dingtalk_ids)]) if dingtalk_ids else (),
        _uniq([normalize_id_number(v) for v in _as_list(id_numbers)]) if id_numbers else (),
        _intern(normalize_address(address)) if address else "", _intern(normalize_city(city)) if city else "")


def record_from_identities(id: Id, *, name: str = "", company: str = "", address: str = "", city: str = "",
                           identities: Iterable[tuple[str, str, bool]] = ()) -> Record:
    """Features of a stored customer: identities are (kind, normalised value, strong)."""
    buckets: dict[str, list[str]] = {}
    for kind, value, strong in identities:
        if kind == "phone":
            kind = "mobile" if strong else "landline"
        buckets.setdefault(kind, []).append(value)
    emails = _uniq(buckets.get("email", ()))
    return Record(
        id=id, name=parse_name(name), company=normalize_company(company), company_key=company_key(company),
        mobiles=_uniq(buckets.get("mobile", ())), landlines=_uniq(buckets.get("landline", ())),
        emails=emails, domains=_uniq(corporate_domain(e) for e in emails),
        unionids=_uniq(buckets.get("unionid", ())), external_userids=_uniq(buckets.get("external_userid", ())),
        dingtalk_ids=_uniq(buckets.get("dingtalk_id", ())), id_numbers=_uniq(buckets.get("id_number", ())),
        address=sys.intern(normalize_address(address)), city=sys.intern(normalize_city(city)))


@dataclass(frozen=True, slots=True)
class Evidence:
    """One criterion's contribution: similarity 0..1 times weight (negative for contradictions;
    weight 0 when the criterion was capped or only explains)."""

    field: str
    score: float
    weight: float
    detail: str = ""

    @property
    def points(self) -> float:
        return self.score * self.weight

    def describe(self) -> str:
        text = f"{self.field}"
        if self.detail:
            text += f" ({self.detail})"
        if self.weight and self.score:
            text += f" {self.points:+.2f}"
        return text


@dataclass(frozen=True, slots=True)
class Candidate:
    customer_id: Id
    kind: str  # same | possible | new (below threshold, kept only to explain)
    score: float
    evidence: tuple[Evidence, ...]

    @property
    def reason(self) -> str:
        return "; ".join(e.describe() for e in self.evidence) or "no evidence"


@dataclass(frozen=True, slots=True)
class MatchDecision:
    kind: str  # same | possible | new
    customer_id: Id | None
    score: float
    reason: str
    evidence: tuple[Evidence, ...] = ()
    candidates: tuple[Candidate, ...] = ()  # possible duplicates, best first (incl. the chosen one)
    capped: tuple[str, ...] = ()  # criteria that matched too many records to count

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "customer_id": self.customer_id, "score": round(self.score, 3),
            "reason": self.reason, "capped": list(self.capped),
            "candidates": [{"customer_id": c.customer_id, "kind": c.kind, "score": round(c.score, 3),
                            "reason": c.reason} for c in self.candidates],
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


class Matcher:
    def __init__(self, config: MatchConfig | None = None) -> None:
        self.config = config or DEFAULT_CONFIG

    # ---- one pair ----------------------------------------------------------------------------

    def score(self, probe: Record, cand: Record, freq: Freq,
              explain: bool = False) -> tuple[float, list[Evidence], list[str]]:
        """Weak-evidence score of a pair, its evidence, and the criteria capped by frequency.

        Two different names end the comparison early (the rest could at most reach half the
        threshold) unless explain is set, as it is for pairs that share a strong identifier."""
        c = self.config
        ev: list[Evidence] = []
        capped: list[str] = []
        total = 0.0
        s_name, why = name_similarity(probe.name, cand.name)
        both_named = probe.name.present and cand.name.present
        if both_named and s_name < c.name_gate and not explain:
            return 0.0, [Evidence("name", s_name, 0.0, f"{probe.name.display}≠{cand.name.display}")], capped
        if s_name > 0:
            weight = c.w_name
            if probe.name.key and freq("name", probe.name.key) > c.name_cap:
                weight = 0.0
                capped.append("name")
                why += f"; common name ({freq('name', probe.name.key)} records), not counted"
            ev.append(Evidence("name", s_name, weight, f"{probe.name.display}≈{cand.name.display}: {why}"))
            total += s_name * weight
        s_comp, comp_detail = company_similarity(probe, cand)
        org = 0.0
        if s_comp >= 0.8:
            weight = c.w_company
            if probe.company_key and freq("company", probe.company_key) > c.company_cap:
                weight, comp_detail = 0.0, comp_detail + "; too many records, not counted"
                capped.append("company")
            ev.append(Evidence("company", s_comp, weight, comp_detail))
            org = s_comp * weight
        elif probe.company and cand.company and s_comp < 0.5:
            ev.append(Evidence("company", 1.0, -c.company_mismatch_penalty, f"differs: {comp_detail}"))
            total -= c.company_mismatch_penalty
        shared_domains = set(probe.domains) & set(cand.domains)
        if shared_domains:
            domain = min(shared_domains)
            if freq("domain", domain) > c.domain_cap:
                ev.append(Evidence("email_domain", 1.0, 0.0, f"@{domain}: too many records, not counted"))
                capped.append("email_domain")
            else:
                ev.append(Evidence("email_domain", 1.0, c.w_domain, f"@{domain}"))
                if org and org >= c.w_company * 0.8:
                    org += c.w_org_both
                org = max(org, c.w_domain)
        total += org
        shared_lines = set(probe.landlines) & set(cand.landlines)
        if shared_lines:
            line = min(shared_lines)
            count = freq("landline", line)
            if count > c.landline_cap:
                ev.append(Evidence("landline", 1.0, 0.0,
                                   f"{mask_value('landline', line)} shared by {count} records (switchboard), not counted"))
                capped.append("landline")
            else:
                ev.append(Evidence("landline", 1.0, c.w_landline, f"{mask_value('landline', line)} direct line"))
                total += c.w_landline
        if probe.address and cand.address:
            s_addr = address_similarity(probe.address, cand.address)
            if s_addr >= c.address_min:
                count = freq("address", probe.address)
                if count > c.address_cap:
                    ev.append(Evidence("address", s_addr, 0.0, f"shared by {count} records, not counted"))
                    capped.append("address")
                else:
                    ev.append(Evidence("address", s_addr, c.w_address))
                    total += s_addr * c.w_address
        if probe.city and probe.city == cand.city:
            ev.append(Evidence("city", 1.0, c.w_city, probe.city))
            total += c.w_city
        # Contradictions: two different values where a person has one.
        if probe.mobiles and cand.mobiles and not set(probe.mobiles) & set(cand.mobiles):
            ev.append(Evidence("mobile", 1.0, -c.mobile_conflict_penalty, "different mobiles"))
            total -= c.mobile_conflict_penalty
        if shared_domains and not set(probe.emails) & set(cand.emails):
            ev.append(Evidence("email", 1.0, -c.email_conflict_penalty, "different addresses at one employer"))
            total -= c.email_conflict_penalty
        for kind in _SINGLE_VALUED:
            mine, theirs = probe.values(kind), cand.values(kind)
            if mine and theirs and not set(mine) & set(theirs):
                if kind == "id_number" and any(_one_edit_apart(a, b) for a in mine for b in theirs):
                    ev.append(Evidence(kind, 1.0, 0.0, "one character apart (a typo?)"))
                    continue
                ev.append(Evidence(kind, 1.0, -c.single_value_conflict_penalty, f"different {kind}"))
                total -= c.single_value_conflict_penalty
        if (probe.name.weak or cand.name.weak) and total > c.weak_name_max:
            ev.append(Evidence("name_weak", 1.0, 0.0, f"honorific-only name: at most {c.weak_name_max}"))
            total = c.weak_name_max
        if both_named and s_name < c.name_gate:
            # Same company, same switchboard, another name: a colleague, not a duplicate.
            ev.append(Evidence("name_gate", 1.0, 0.0, "names differ: scores halved"))
            total = total / 2 if total > 0 else total
        return max(0.0, min(1.0, total)), ev, capped

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
            conflicts = [e for e in weak_ev if e.field in _SINGLE_VALUED and e.weight < 0]
            strong_ev = [Evidence(kind, 1.0, 1.0, f"same {kind} {mask_value(kind, value)}") for kind, value in hits]
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
                reason = "; ".join(e.describe() for e in best.evidence if e.weight == 1.0)
                if others:
                    reason += f"; also shares an identifier with {', '.join(str(o.customer_id) for o in others)}"
                return MatchDecision(SAME, best.customer_id, 1.0, reason, best.evidence, (best,) + others,
                                     tuple(sorted(capped)))
            scored.extend(others)
        for cid, rec in records.items():
            if cid == probe.id or cid in strong_hits:
                continue
            score, ev, weak_capped = self.score(probe, rec, freq)
            capped.update(weak_capped)
            if score <= 0:
                continue
            scored.append(Candidate(cid, POSSIBLE if score >= c.possible_threshold else NEW, score, tuple(ev)))
        if is_distinct is not None and probe.id is not None:
            scored = [s for s in scored if not is_distinct(probe.id, s.customer_id)]
        scored.sort(key=lambda s: s.score, reverse=True)
        possibles = tuple(s for s in scored if s.kind == POSSIBLE)[:5]
        if possibles:
            best = possibles[0]
            return MatchDecision(POSSIBLE, best.customer_id, best.score,
                                 f"possible duplicate of {best.customer_id} ({best.score:.2f}): {best.reason}",
                                 best.evidence, possibles, tuple(sorted(capped)))
        if scored:
            best = scored[0]
            reason = f"new: best candidate {best.customer_id} scored {best.score:.2f} < {c.possible_threshold}: {best.reason}"
            return MatchDecision(NEW, None, best.score, reason, best.evidence, (), tuple(sorted(capped)))
        reason = "new: no candidate shares an identifier, name, company, landline or address"
        if capped:
            reason += f" (not counted, too common: {', '.join(sorted(capped))})"
        return MatchDecision(NEW, None, 0.0, reason, (), (), tuple(sorted(capped)))


def decision_summary(decision: MatchDecision) -> dict[str, Any]:
    """Small JSON for attributes, audit rows and cards."""
    return {"kind": decision.kind, "customer_id": decision.customer_id, "score": round(decision.score, 3),
            "reason": decision.reason[:500]}


__all__ = ["SAME", "POSSIBLE", "NEW", "MatchConfig", "DEFAULT_CONFIG", "Record", "Evidence", "Candidate",
           "MatchDecision", "Matcher", "build_record", "record_from_identities", "mask_value",
           "company_similarity", "decision_summary"]
