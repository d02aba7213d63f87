"""Take a tool's arguments from the conversation, by argument name and type (offline model only).

Values are taken as the user wrote them: an identifier is the token the user typed ("4417", "ORD-4417",
"AB12CD"), never rewritten into one bot's format (a tool that accepts several spellings normalises them
itself). An argument the model asked for in its previous message is filled from the user's next answer
whatever its name and type (docs/offline-model.md, "Tool arguments")."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from chorus.agents.pii import EMAIL, PHONE, extract_name

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


# Argument names (split at "_") that hold an identifier the user reads out: an order id, a confirmation code...
_IDENTIFIER_WORDS = {
    "id",
    "number",
    "no",
    "code",
    "confirmation",
    "reference",
    "ref",
    "ticket",
    "booking",
    "tracking",
    "account",
    "invoice",
    "sku",
    "pnr",
    "locator",
    "serial",
}
_TOKEN = re.compile(r"#?[A-Za-z0-9][A-Za-z0-9_/-]*")
_LEAD_IN = re.compile(
    r"^\s*(?:(?:sure|yes|yeah|yep|ok(?:ay)?|of course|right|well)\b[,!.]?\s*)?"
    r"(?:(?:it'?s|it is|that'?s|that is|i think it'?s|(?:my|the|our) [\w ]{1,40}? (?:is|was|are))\b:?\s*)?",
    re.IGNORECASE,
)


def _is_identifier(key: str, prop: dict[str, Any]) -> bool:
    if set(key.split("_")) & _IDENTIFIER_WORDS:
        return True
    description = str(prop.get("description", "")).lower()
    return bool(re.search(r"\b(identifier|confirmation code|reference number|booking code)\b", description))


def identifier(text: str) -> str | None:
    """The identifier the user wrote, as written: a token with a digit in it (letters and digits first, as in
    "AB-1234", over a bare number), not a date, a time, an amount, an email or a phone number."""
    cleaned = EMAIL.sub(" ", text)
    cleaned = PHONE.sub(" ", cleaned)
    cleaned = _ISO_DATE.sub(" ", cleaned)
    cleaned = _TIME.sub(" ", cleaned)
    cleaned = re.sub(r"\$\s?\d+(?:[.,]\d+)?", " ", cleaned)
    tokens = [t.rstrip("-_/") for t in _TOKEN.findall(cleaned)]
    with_digit = [t for t in tokens if any(c.isdigit() for c in t) and len(t.lstrip("#")) >= 3]
    mixed = [t for t in with_digit if not t.lstrip("#").isdigit()]
    chosen = mixed or with_digit
    return chosen[0] if chosen else None


def answer_text(text: str) -> str | None:
    """An answer given as a plain string, without its lead-in ("it's", "my confirmation is") and final stop."""
    stripped = _LEAD_IN.sub("", text.strip(), count=1).strip().rstrip(".!").strip().strip("\"'“”")
    return stripped or None


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
    if typ in (None, "string") and _is_identifier(key, prop):
        return identifier(text)
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


_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip


def _answer_value(prop: dict[str, Any], text: str) -> Any | None:
    """An asked-for argument's value from the user's answer, by the argument's type alone."""
    typ = prop.get("type")
    if isinstance(prop.get("enum"), list):
        said = answer_text(text) or ""
        for option in prop["enum"]:
            spoken = str(option).lower().replace("_", " ")
            if spoken == said.lower() or re.search(rf"\b{re.escape(spoken)}\b", text.lower()):
                return option
        return None
    if typ in ("number", "integer"):
        m = _NUMBER.search(text)
        if m:
            value = float(m.group(1))
        else:
            word = next((_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS), None)
            if word is None:
                return None
            value = float(word)
        return int(value) if typ == "integer" else value
    if typ == "boolean":
        low = text.lower()
        if re.search(r"\b(yes|yeah|yep|true|sure|please do|confirm|correct|right)\b", low):
            return True
        if re.search(r"\b(no|nope|false|don'?t|do not)\b", low):
            return False
        return None
    if typ in (None, "string"):
        return answer_text(text)
    return None


def extract_arguments(
    schema: dict[str, Any], user_texts: list[str], *, asked: Sequence[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """Arguments found in the user's messages (newest first) and the required ones still missing.

    `asked` names the arguments the model asked for in its previous message: the newest message is the
    user's answer, and fills them whatever their name and type (several asked at once: one per comma- or
    "and"-separated part, in the order asked); the other arguments come from the messages before it."""
    props: dict[str, Any] = schema.get("properties", {})
    required: list[str] = list(schema.get("required", []))
    found: dict[str, Any] = {}
    answering = [name for name in asked if name in props]
    if answering and user_texts:
        answer = user_texts[0]
        parts = [answer] * len(answering)
        if len(answering) > 1:
            split = [p for p in re.split(r"\s*(?:[,;\n]|\band\b)\s*", answer) if p.strip()]
            if len(split) == len(answering):
                parts = split
        for name, part in zip(answering, parts, strict=True):
            prop = props[name] if isinstance(props[name], dict) else {}
            value = _extract_one(name, prop, part)
            if value is None:
                value = _answer_value(prop, part)
            if value is not None:
                found[name] = value
        user_texts = user_texts[1:]
    for name, prop in props.items():
        if name in found:
            continue
        for text in user_texts:
            value = _extract_one(name, prop if isinstance(prop, dict) else {}, text)
            if value is not None:
                found[name] = value
                break
    missing = [name for name in required if name not in found]
    return found, missing
