"""One exception tree for every error a Chorus user can hit, named for what failed.

    ChorusError
    ├── InvalidInput             the request breaks a rule (every problem with its JSON path)
    ├── DestinationRefused       a URL a tenant gave may not be called (SSRF guard: private, link-local)
    │   └── UnresolvableDestination  its host does not resolve (perhaps for now)
    ├── BadRequest               the request cannot be understood at all
    ├── Unauthorized             no key, or an unknown or revoked one
    ├── Forbidden                the key's role may not do this
    ├── NotFound                 no such resource for this tenant (another tenant's look the same)
    │   ├── ThreadNotFound
    │   ├── RunNotFound
    │   ├── AssistantNotFound
    │   ├── ConfigNotFound       no config of that id (the file's config_id, or the assistant id)
    │   ├── VersionNotFound      a version number the config does not have
    │   └── CronNotFound
    ├── Conflict                 the resource's current state forbids it
    │   ├── AlreadyExists        a duplicate id or name
    │   │   └── ConfigIdTaken    another upload created a config of this id at the same moment
    │   ├── ThreadBusy           a run is queued or running on the thread
    │   └── RunEnded             the run has already ended
    ├── PayloadTooLarge
    ├── RateLimited              too many requests for a tenant, a publishable key or a visitor; retry later
    ├── UnsupportedMediaType     a file of a type Chorus cannot read
    ├── Unavailable              a dependency cannot serve now; retry later
    │   ├── DatabaseUnavailable
    │   ├── ProviderUnavailable
    │   └── SecretUndecryptable
    ├── ToolError                a tool failed (inside a turn, the model sees it)
    └── ServerMisconfigured      an operator setting cannot be used (raised at startup)

`code` is the error's stable name in API bodies. The HTTP status of each branch is decided in one place,
chorus/http_errors.py, not here: the domain does not speak HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ChorusError(Exception):
    """Base class. `status` is the HTTP status the API answers with; `detail` says what to fix."""

    code = "internal_error"
    headers: Mapping[str, str] = {}  # sent with the response, e.g. Retry-After

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.extra}


class BadRequest(ChorusError):
    code = "bad_request"


class Unauthorized(ChorusError):
    code = "unauthorized"


class Forbidden(ChorusError):
    code = "forbidden"


class NotFound(ChorusError):
    code = "not_found"


class Conflict(ChorusError):
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class ConfigIdTaken(AlreadyExists):
    """The tenant has a live config of this id: another upload of the same new id created it first."""

    def __init__(self, config_id: str) -> None:
        super().__init__(f"a config with the id '{config_id[:128]}' already exists in this tenant; upload again")


class DeployBlocked(Conflict):
    """The deploy gate refused a version (an eval suite it requires has not passed): `deployment_blocked_by`
    lists why."""

    code = "deployment_blocked"


class ThreadBusy(Conflict):
    """A run is queued or running on the thread (deleting it, or a run with multitask_strategy 'reject')."""

    code = "thread_busy"


class RunEnded(Conflict):
    """The run has already ended (e.g. a cancel that comes too late)."""

    code = "run_ended"


class ThreadNotFound(NotFound):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread '{thread_id}' does not exist")


class RunNotFound(NotFound):
    def __init__(self, run_id: str, thread_id: str | None = None) -> None:
        where = f" on thread '{thread_id}'" if thread_id else ""
        super().__init__(f"run '{run_id}' does not exist{where}")


class AssistantNotFound(NotFound):
    def __init__(self, assistant_id: str) -> None:
        super().__init__(f"assistant '{assistant_id}' does not exist")


class ConfigNotFound(NotFound):
    def __init__(self, config_id: str) -> None:
        super().__init__(
            f"config '{config_id[:128]}' does not exist: use its config_metadata.config_id or its assistant_id"
        )


class VersionNotFound(NotFound):
    """A version number the config does not have; the message and `latest_version` say which it has."""

    def __init__(self, config_id: str, version: int, latest: int) -> None:
        super().__init__(
            f"config '{config_id}' has no version {version}: its versions are 1 to {latest} (the latest is {latest})",
            extra={"latest_version": latest},
        )


class CronNotFound(NotFound):
    def __init__(self, cron_id: str) -> None:
        super().__init__(f"cron '{cron_id}' does not exist")


class CallNotFound(NotFound):
    def __init__(self, call_id: str) -> None:
        super().__init__(f"call '{call_id}' does not exist")


class PayloadTooLarge(ChorusError):
    code = "payload_too_large"


class RateLimited(ChorusError):
    """A rate limit was reached (a tenant's API requests, a publishable key's or a widget visitor's); the
    `Retry-After` header says in how many seconds the window that counted them ends."""

    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after_s: int, limit_per_minute: int) -> None:
        super().__init__(detail, extra={"retry_after_s": retry_after_s, "limit_per_minute": limit_per_minute})
        self.retry_after_s = retry_after_s
        self.headers = {"Retry-After": str(retry_after_s)}


class UnsupportedMediaType(ChorusError):
    code = "unsupported_media_type"


class InvalidInput(ChorusError):
    """Input that parsed but broke a rule; `errors` lists every problem with its JSON path."""

    code = "invalid_input"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail, extra={"errors": errors or []})
        self.errors = errors or []


class DestinationRefused(ChorusError):
    """A URL a tenant gave (an HTTP tool's, a run's webhook) may not be called: not http(s), credentials in
    it, or a host on a private, loopback or link-local address (chorus/agents/destinations.py)."""

    code = "destination_refused"


class UnresolvableDestination(DestinationRefused):
    """The URL's host does not resolve; unlike a refused address, this may pass a moment later."""

    code = "unresolvable_destination"


class Unavailable(ChorusError):
    """Something Chorus depends on cannot serve now; the same request may succeed later."""

    code = "unavailable"


class ProviderUnavailable(Unavailable):
    """A bot's model provider cannot be used (no credentials, unknown provider)."""

    code = "provider_unavailable"


class DatabaseUnavailable(Unavailable):
    """Postgres cannot be reached (or gave no connection in time). Clients retry; nothing to fix on their side."""

    code = "database_unavailable"
    retry_after_s = 2
    headers = {"Retry-After": str(retry_after_s)}

    def __init__(self, reason: str) -> None:
        super().__init__(f"the database is not reachable ({reason}); retry in a few seconds")
        self.reason = reason


class ServerBusy(Unavailable):
    """No database connection of this server process became free while a request waited for one, and the
    database is not known to be down: the server is overloaded. Clients retry; operators add processes or
    connections."""

    code = "server_busy"
    retry_after_s = 1
    headers = {"Retry-After": str(retry_after_s)}

    def __init__(self, *, connections: int, waited_s: float) -> None:
        super().__init__(
            f"the server is busy: none of its {connections} database connections became free within {waited_s:g} s;"
            " retry in a moment (operators: more server processes, or a larger CHORUS_DB_POOL_SIZE)"
        )


class ToolError(ChorusError):
    """A tool failed; inside a turn this becomes a tool message the model sees."""

    code = "tool_error"


class ServerMisconfigured(ChorusError):
    """A setting the operator gave cannot be used (e.g. a malformed CHORUS_SECRET_KEY); raised at startup."""

    code = "server_misconfigured"


class SecretUndecryptable(Unavailable):
    """A stored secret cannot be decrypted with the server's key (CHORUS_SECRET_KEY changed, or the row was
    altered); the operator must restore the key it was encrypted with, or the secret must be rotated."""

    code = "secret_undecryptable"
