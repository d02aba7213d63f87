"""Take a tool's arguments from the conversation, by argument name and type (offline model only)."""

from __future__ import annotations

import re
from typing import Any

from chorus.agents.pii import EMAIL, PHONE, extract_name, extract_order_id

_NUMBER = re.compile(r"(?<![\w.-])\$?(\d+(?:\.\d+)?)(?![\w-])")
_ISO_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_TIME = re.compile(r"\b(\d{1,2}:\d{2})\s*(am|pm)?\b", re.IGNORECASE)
_ADDRESS = re.compile(
    r"\b\d{1,6}\s+[A-Za-z][A-Za-z .'-]*\b(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|way|"
    r"court|ct|place|pl|square|sq)\b[^.!?\n]*",
    re.IGNORECASE,
)
_ID_LIKE = re.compile(r"\b[A-Z]{2,5}-?\d{2,}\b")
_FREE_TEXT = {
    "reason",
    "message",
    "query",
    "question",
    "description",
    "note",
    "notes",
    "comment",
    "details",
    "issue",
    "text",
    "topic",
}


def _without_ids(text: str) -> str:
    text = _ISO_DATE.sub(" ", text)
    text = _TIME.sub(" ", text)
    return _ID_LIKE.sub(" ", text)


def _extract_one(name: str, prop: dict[str, Any], text: str) -> Any | None:
    key = name.lower()
    typ = prop.get("type")
    if isinstance(prop.get("enum"), list):
        for option in prop["enum"]:
            if str(option).lower() in text.lower():
                return option
        return None
    if "order" in key and "id" in key:
        return extract_order_id(text)
    if "email" in key:
        m = EMAIL.search(text)
        return m.group(0) if m else None
    if "phone" in key:
        m = PHONE.search(text)
        return m.group(0).strip() if m else None
    if "date" in key or key in {"day", "dob"}:
        m = _ISO_DATE.search(text)
        return m.group(1) if m else None
    if key == "time" or key.endswith("_time"):
        m = _TIME.search(text)
        if not m:
            return None
        hour, minute = (int(x) for x in m.group(1).split(":"))
        if (m.group(2) or "").lower() == "pm" and hour < 12:
            hour += 12
        return f"{hour:02d}:{minute:02d}"
    if "address" in key:
        m = _ADDRESS.search(text)
        return m.group(0).strip().rstrip(",") if m else None
    if "name" in key:
        return extract_name(text)
    if typ in ("number", "integer"):
        m = _NUMBER.search(_without_ids(text))
        if not m:
            return None
        value = float(m.group(1))
        return int(value) if typ == "integer" else value
    if typ == "boolean":
        low = text.lower()
        if re.search(r"\b(yes|true|please do|confirm)\b", low):
            return True
        if re.search(r"\b(no|false|don't)\b", low):
            return False
        return None
    if typ == "string" and (key in _FREE_TEXT or key.endswith("_reason")):
        return text.strip() or None
    return None


def extract_arguments(schema: dict[str, Any], user_texts: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Arguments found in the user's messages (newest first) and the required ones still missing."""
    props: dict[str, Any] = schema.get("properties", {})
    required: list[str] = list(schema.get("required", []))
    found: dict[str, Any] = {}
    for name, prop in props.items():
        for text in user_texts:
            value = _extract_one(name, prop if isinstance(prop, dict) else {}, text)
            if value is not None:
                found[name] = value
                break
    missing = [name for name in required if name not in found]
    return found, missing
