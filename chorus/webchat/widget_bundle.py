"""/widget.js: the embeddable widget as one script, built once per process from files in the package.

DOMPurify and marked (vendored, static/vendor/README.md) and the widget's own script and styles are joined
into one function scope: the libraries export into local variables rather than the host page's globals, and
a page that has its own copy of either (or an AMD loader) is not disturbed. No build step, no network: the
bundle is a concatenation, kept with its gzip form and an ETag.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
WIDGET_DIR = STATIC_DIR / "widget"
# The vendored libraries and their versions (static/vendor/README.md; a test checks the files agree).
VENDORED = {"purify.min.js": ("DOMPurify", "3.4.18"), "marked.umd.js": ("marked", "18.2.1")}

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Bundle:
    script: bytes
    gzipped: bytes
    etag: str


def _as_module(source: str, name: str) -> str:
    """A UMD file run with a local CommonJS `module`, its export bound to `name`."""
    return (
        f"var {name} = (function () {{ var module = {{ exports: {{}} }}, exports = module.exports;\n"
        f"{source}\nreturn module.exports; }})();\n"
    )


def build() -> str:
    css = (WIDGET_DIR / "widget.css").read_text()
    return "".join(
        [
            "/*! Chorus chat widget. Bundles DOMPurify (Apache-2.0 OR MPL-2.0) and marked (MIT). */\n",
            '(function () {\n"use strict";\n',
            _as_module((VENDOR_DIR / "purify.min.js").read_text(), "DOMPurify"),
            _as_module((VENDOR_DIR / "marked.umd.js").read_text(), "marked"),
            (STATIC_DIR / "markdown.js").read_text(),
            f"var WIDGET_CSS = {json.dumps(css)};\n",
            (WIDGET_DIR / "widget.js").read_text(),
            "\n})();\n",
        ]
    )


@cache
def bundle() -> Bundle:
    script = build().encode()
    return Bundle(
        script, gzip.compress(script, compresslevel=9, mtime=0), f'"{hashlib.sha256(script).hexdigest()[:32]}"'
    )


@router.get("/widget.js")
async def widget_script(request: Request) -> Response:
    """The widget's one script. Any page may load it (a script tag needs no CORS); what it can do is
    decided by the publishable key it carries."""
    built = bundle()
    headers = {
        "ETag": built.etag,
        "Cache-Control": "public, max-age=300",
        "Vary": "Accept-Encoding",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == built.etag:
        return Response(status_code=304, headers=headers)
    media = "text/javascript; charset=utf-8"
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(built.gzipped, media_type=media, headers={**headers, "Content-Encoding": "gzip"})
    return Response(built.script, media_type=media, headers=headers)
