"""PII: extract the fields a bot collects from what the user says, and redact PII from logs."""

from __future__ import annotations

import re
from collections.abc import Callable

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![\w-])(?:\+\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?![\w-])")
ORDER_ID = re.compile(r"\b(?:ORD|ORDER)[-_ ]?\d{3,}\b|#\d{4,}\b", re.IGNORECASE)
DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4})\b")
NAME = re.compile(r"\b(?:my name is|i am|i'm|this is|name:)\s+([A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+){0,2})", re.IGNORECASE)
_NAME_STOPWORDS = {
    "sorry",
    "not",
    "looking",
    "trying",
    "calling",
    "here",
    "fine",
    "good",
    "having",
    "a",
    "an",
}


def extract_name(text: str) -> str | None:
    m = NAME.search(text)
    if not m:
        return None
    words = m.group(1).split()
    if words[0].lower() in _NAME_STOPWORDS or not words[0][0].isupper():
        return None
    kept = [w for w in words if w[0].isupper()]
    return " ".join(kept)


def extract_order_id(text: str) -> str | None:
    m = ORDER_ID.search(text)
    if not m:
        return None
    raw = m.group(0).upper().replace("_", "-").replace(" ", "-")
    return raw if raw.startswith("#") else re.sub(r"^(ORDER|ORD)-?", "ORD-", raw)


def _regex(pattern: re.Pattern[str]) -> Callable[[str], str | None]:
    def extract(text: str) -> str | None:
        m = pattern.search(text)
        return m.group(0).strip() if m else None

    return extract


def _date(text: str) -> str | None:
    m = DATE.search(text)
    return m.group(1) if m else None


EXTRACTORS: dict[str, Callable[[str], str | None]] = {
    "email": _regex(EMAIL),
    "phone": _regex(PHONE),
    "phone_number": _regex(PHONE),
    "name": extract_name,
    "full_name": extract_name,
    "patient_name": extract_name,
    "customer_name": extract_name,
    "order_id": extract_order_id,
    "date_of_birth": _date,
    "dob": _date,
}


def has_extractor(field: str) -> bool:
    return field in EXTRACTORS


def extract_pii(text: str, fields: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for field in fields:
        extractor = EXTRACTORS.get(field)
        if extractor and (value := extractor(text)):
            found[field] = value
    return found


def redact(text: str) -> str:
    text = EMAIL.sub("[email]", text)
    text = PHONE.sub("[phone]", text)
    return DATE.sub("[date]", text)
