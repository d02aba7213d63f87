"""Where a tenant may make Chorus send HTTP requests (HTTP tools, run webhooks): the SSRF guard.

Tenants write the URLs, so a destination on a loopback or private address is refused unless the operator
allows private ones (CHORUS_HTTP_TOOLS_ALLOW_PRIVATE=1), and link-local (cloud metadata), multicast,
reserved and unspecified addresses are refused always. The check resolves the host and looks at every
address it resolves to; a caller that connects afterwards should connect to an address it returned (see
`pinned_request`), so a name re-resolved in between (DNS rebinding) cannot move the request elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from urllib.parse import SplitResult, urlsplit

from chorus.agents.errors import DestinationRefused, UnresolvableDestination

ALLOW_PRIVATE_ENV = "CHORUS_HTTP_TOOLS_ALLOW_PRIVATE"
RESOLVE_TIMEOUT_S = 5.0
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Cloud metadata endpoints outside link-local space (AWS's IPv6 one is a unique-local address).
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("fd00:ec2::254")})


def _never(ip: IPAddress) -> bool:
    """Addresses refused whatever the operator allows: cloud metadata, link-local, multicast, reserved, unspecified."""
    return ip in METADATA_ADDRESSES or ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved


def private_allowed() -> bool:
    """Read on every check, so an operator's setting (and a test's) applies without a restart."""
    return os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def parse_url(url: str, *, who: str) -> SplitResult:
    """The URL's parts if it is an absolute http(s) URL with a host and no credentials; else
    DestinationRefused saying what is wrong (checked without the network)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise DestinationRefused(f"{who} must be an http(s) URL; '{url[:100]}' is malformed") from None
    if parts.scheme not in ("http", "https"):
        raise DestinationRefused(f"{who} must be an http:// or https:// URL (got scheme '{parts.scheme[:20]}')")
    if not parts.hostname:
        raise DestinationRefused(f"{who} must name a host, e.g. https://hooks.example.com/chorus")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused(
            f"{who} must not carry credentials in its URL (user:password@); authenticate the sender by its "
            "signature instead"
        )
    return parts


def literal_problem(url: str, *, who: str, private_ok: bool) -> str | None:
    """What the guard would refuse in `url` without the network (for a config or suite being saved): a malformed
    URL, credentials in it, or a host written as an address that is link-local (cloud metadata), multicast,
    reserved or unspecified — and, unless `private_ok`, loopback or private. A host name is resolved, and
    checked again, when a request is made."""
    try:
        host = parse_url(url, who=who).hostname or ""
    except DestinationRefused as exc:
        return exc.detail
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if _never(ip):
        return (
            f"{who} may not call {ip}: link-local (cloud metadata), multicast, reserved and unspecified addresses"
            " are refused"
        )
    if (ip.is_loopback or ip.is_private) and not private_ok:
        return (
            f"{who} may not call {ip}, a private address; the operator can allow private destinations with "
            f"{ALLOW_PRIVATE_ENV}=1"
        )
    return None


async def check_destination(url: str, *, who: str) -> list[IPAddress]:
    """The addresses the URL's host resolves to, every one of them allowed; DestinationRefused (or its
    UnresolvableDestination) otherwise. `who` names the caller in messages ("tool 'x'", "webhook")."""
    host = parse_url(url, who=who).hostname or ""
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):  # a slow resolver must not hold a request or a worker
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except (OSError, TimeoutError):
        raise UnresolvableDestination(f"{who} could not resolve host '{host[:100]}'") from None
    allow_private = private_allowed()
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if _never(ip):
            raise DestinationRefused(f"{who} may not call {host} ({ip}): link-local and reserved addresses are refused")
        if (ip.is_loopback or ip.is_private) and not allow_private:
            raise DestinationRefused(
                f"{who} may not call {host} ({ip}), a private address; the operator can allow private "
                f"destinations with {ALLOW_PRIVATE_ENV}=1"
            )
        if ip not in addresses:
            addresses.append(ip)
    return addresses


def pinned_request(url: str, address: IPAddress) -> tuple[str, dict[str, str], dict[str, str]]:
    """(URL, headers, httpx extensions) for sending to `url` on the checked `address`: the URL names the
    address, the Host header and TLS (SNI and certificate check) the original host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{address}]" if address.version == 6 else str(address)
    if parts.port is not None:
        netloc += f":{parts.port}"
    target = parts._replace(netloc=netloc).geturl()
    host_header = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        host_header += f":{parts.port}"
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return target, {"Host": host_header}, extensions
