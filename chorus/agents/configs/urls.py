"""Checks on the URLs a config names (an HTTP tool's endpoint, a model server's base_url): well-formed, and for
an HTTP tool, every `{placeholder}` one of the tool's declared arguments (chorus/agents/tools/http_tool.py
fills them from the call's arguments and nothing else)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")  # as http_tool.py fills them
_SECRET_REFERENCE = re.compile(r"\$\{[^{}]*\}")  # `${secret:NAME}`: the vault's syntax, checked elsewhere
_SCHEMES = ("http", "https")


def url_problem(url: str, *, placeholders: bool = False) -> str | None:
    """What is wrong with `url` (None when nothing is). `placeholders`: `{name}` parts stand for values
    filled in at call time (and may sit in the host: `https://{shop}.example.com`)."""
    if not url.strip():
        return "the URL is empty: write it as https://api.example.com/path"
    if any(ch.isspace() for ch in url):
        return f"'{url}' contains a space or line break: remove it, or write a space in a path or query as %20"
    # `${secret:NAME}` in a URL is the vault check's to report (references expand only in headers).
    concrete = PLACEHOLDER.sub("x", _SECRET_REFERENCE.sub("x", url)) if placeholders else url
    if "{" in concrete or "}" in concrete:
        return (
            f"'{url}' has a '{{' or '}}' that is not a placeholder: placeholders are {{name}} with a letter or '_' "
            "first, then letters, digits or '_'"
        )
    if "://" not in concrete:
        return f"'{url}' has no scheme: write it as https://{url.lstrip('/')}"
    scheme = concrete.split("://", 1)[0].lower()
    if scheme not in _SCHEMES:
        return f"'{url}' uses the scheme '{scheme}', which HTTP calls do not support: use https:// (or http://)"
    try:
        parts = urlsplit(concrete)
        port = parts.port
    except ValueError as exc:
        return f"'{url}' is not a valid URL ({exc}): write it as https://host[:port]/path"
    if not parts.hostname:
        return f"'{url}' has no host: write it as {scheme}://api.example.com/path"
    if port == 0:
        return f"'{url}' has port 0: use a port from 1 to 65535, or none"
    return None


def placeholders_in(text: str) -> list[str]:
    """The `{name}` placeholders of `text`, leaving out `${secret:NAME}` vault references."""
    return PLACEHOLDER.findall(_SECRET_REFERENCE.sub("", text))
