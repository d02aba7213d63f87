"""A config's history: every change appends an immutable version that records who made it, how and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from chorus.agents.errors import InvalidInput
from chorus.agents.tenancy.keys import Principal

# How a version came to be: an upload (POST /api/v1/configs, POST /assistants), a GitOps apply of a file
# (`chorus config apply`, the demo's example bots), a PATCH, the visual editor, the config chat, a rollback.
ChangeSource = Literal["upload", "apply", "patch", "visual_update", "chat", "rollback"]
SOURCES: tuple[ChangeSource, ...] = ("upload", "apply", "patch", "visual_update", "chat", "rollback")
# A version's approval (migration 016): only an approved version can be current or deployed.
ApprovalStatus = Literal["approved", "pending_approval", "rejected"]


@dataclass(frozen=True)
class Author:
    """An API key (its name, filled in from the key when the version is stored, and its role then), or the
    `chorus` CLI working on the database directly."""

    kind: Literal["api_key", "cli"]
    key_id: str | None = None
    role: str | None = None
    name: str | None = None
    # The key's environment (not stored): a staging key's change must not reach production (see
    # deployments_repository.freeze_production).
    environment: str = "production"

    @staticmethod
    def of(principal: Principal) -> Author:
        return Author("api_key", key_id=principal.key_id, role=principal.role, environment=principal.environment)

    @staticmethod
    def cli() -> Author:
        return Author("cli", name="cli")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "key_id": self.key_id, "name": self.name, "role": self.role}


@dataclass(frozen=True)
class VersionRecord:
    version: int
    config: dict[str, Any]
    commit_message: str | None
    source: ChangeSource
    author: Author | None  # None: made before versions recorded their author
    created_at: datetime
    rolled_back_to: int | None
    status: ApprovalStatus = "approved"
    risk_level: str | None = None  # None: not classified (an upload, apply or rollback)
    change_classification: dict[str, Any] | None = None  # ChangeClassification.to_dict() of a PATCH
    based_on: int | None = None  # the current version the change was made on
    source_path: str | None = None  # an applied version: the file it came from (migration 018)


def parse_version(value: object, *, where: str) -> int:
    """A version number as a client may write it: 3, "3" or the seeds' "v3"."""
    text = str(value).strip()
    number = text[1:] if text[:1] in ("v", "V") else text
    if isinstance(value, bool) or not (number.isascii() and number.isdigit()) or int(number) < 1:
        raise InvalidInput(
            f"'{text[:32]}' is not a version: give a version number such as 3 (or v3)",
            errors=[{"path": where, "message": "expected a version number ≥ 1"}],
        )
    return int(number)
