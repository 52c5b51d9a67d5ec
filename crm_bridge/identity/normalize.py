"""Normalisation of identifiers so that one customer's many spellings compare equal."""

from __future__ import annotations

import re

import phonenumbers

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_phone(raw: str | None, region: str = "CN") -> tuple[str, str] | None:
    """Returns (kind, E.164) with kind "mobile" or "landline", or None when it is no valid number.

    Mobiles and landlines are kept apart: a company switchboard is weak evidence, a mobile is not.
    """
    if not raw:
        return None
    text = str(raw).strip()
    digits = re.sub(r"[^\d+]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = "+" + digits
    try:
        num = phonenumbers.parse(digits or text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    kind = phonenumbers.number_type(num)
    mobile = kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    return ("mobile" if mobile else "landline",
            phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164))


def normalize_email(raw: str | None) -> str | None:
    if not raw:
        return None
    text = str(raw).strip().lower()
    return text if _EMAIL.match(text) else None
