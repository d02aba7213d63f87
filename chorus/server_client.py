"""The CLI's client of a running Chorus server (`chorus config apply | pull | approve | reject`, and `deploy`):
its URL and API key (flags, else CHORUS_URL and CHORUS_API_KEY), timeouts, and the server's `{detail,
errors}` answers turned into one message a person can act on."""

from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"  # `chorus serve`'s default host and port
URL_ENV = "CHORUS_URL"
KEY_ENV = "CHORUS_API_KEY"


class ServerRequestFailed(Exception):
    """A request to the server failed: not reachable, refused, or answered with an error. `detail` is the
    message for the terminal; `lines` the problems listed under it (the server's `errors`). A client-side
    error, raised in the CLI only: not a ChorusError, so not in the server's HTTP status table."""

    def __init__(self, detail: str, *, http_status: int | None = None, lines: list[str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.http_status = http_status
        self.lines = lines or []


def _problems(body: Any) -> list[str]:
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    lines = []
    for e in errors:
        if isinstance(e, dict):
            where = e.get("file") or e.get("path") or e.get("loc") or "$"
            where = where if isinstance(where, str) else ".".join(map(str, where))
            lines.append(f"{where}: {e.get('message') or e.get('msg')}")
    return lines


class ServerClient:
    """One server and key; `get`/`post` answer the JSON body or raise ServerRequestFailed."""

    def __init__(self, url: str, key: str, *, timeout: float = 60.0, transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"x-api-key": key},
            timeout=httpx.Timeout(timeout, connect=5.0),
            transport=transport,
        )

    @classmethod
    def from_env(cls, url: str | None = None, key: str | None = None) -> ServerClient:
        """The flags given, else the environment; no key at all is an error saying where to put one."""
        url = url or os.environ.get(URL_ENV) or DEFAULT_URL
        key = key or os.environ.get(KEY_ENV)
        if not key:
            raise ServerRequestFailed(
                f"no API key: set {KEY_ENV} (or pass --key) to a key of your tenant; `chorus keys create --role "
                "developer` makes one"
            )
        if not url.startswith(("http://", "https://")):
            raise ServerRequestFailed(f"'{url}' is not a server URL: give one like {DEFAULT_URL} ({URL_ENV} or --url)")
        return cls(url, key)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, path: str, *, params: dict[str, Any] | None = None) -> Any:
        return self._send("GET", path, params=params)

    def post(self, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        return self._send("POST", path, json=json, params=params)

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ServerRequestFailed(
                f"the Chorus server at {self.url} did not answer in time ({method} {path}); try again, or check "
                "its logs"
            ) from None
        except httpx.TransportError as exc:
            raise ServerRequestFailed(
                f"cannot reach the Chorus server at {self.url} ({type(exc).__name__}): is `chorus serve` running? "
                f"Point {URL_ENV} (or --url) at it"
            ) from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.is_success:
            return body
        detail = body.get("detail") if isinstance(body, dict) else None
        if not isinstance(detail, str):
            detail = resp.text[:300] or resp.reason_phrase
        if resp.status_code == 401:
            detail = f"the server refused the API key ({KEY_ENV} or --key): {detail}"
        elif resp.status_code == 403:
            detail = f"your key may not do this: {detail}"
        status = resp.status_code
        raise ServerRequestFailed(f"{detail} (HTTP {status})", http_status=status, lines=_problems(body))
