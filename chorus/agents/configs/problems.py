"""What validating a bot config finds: problems, each at the JSON path of the field it is about and filed under
one of the seed's named checks (`json_schema_compliance`, `tool_dependencies_met`, …)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from chorus.agents.configs.models import BotConfig

CheckName = Literal[
    "json_schema_compliance",
    "required_fields_present",
    "tool_dependencies_met",
    "integration_dependencies_met",
    "llm_config_valid",
    "credentials_present",
    "knowledge_available",
    "workflow_features_supported",
    "circular_dependencies",
]
# The order a report lists them in: the seed's six, then Chorus's own (the order of CheckName).
CHECKS: tuple[CheckName, ...] = get_args(CheckName)


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    check: CheckName = "json_schema_compliance"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@dataclass
class ValidationReport:
    """`config` is the parsed config of a valid report; `parsed` the parsed config whenever the structure was
    sound enough to parse (the deployment checks read it even when a rule beyond the schema failed)."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    config: BotConfig | None = None
    parsed: BotConfig | None = None

    @property
    def valid(self) -> bool:
        return not self.errors and self.config is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "validation_status": "passed" if self.valid else "failed",
            "errors": [p.to_dict() for p in self.errors],
            "warnings": [p.to_dict() for p in self.warnings],
        }


def json_path(parts: list[Any] | tuple[Any, ...]) -> str:
    """`$.tools_needed[0].http.url`: keys that are not plain names are quoted (`$.headers['X-Key']`)."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}"
        else:
            out += "[" + repr(str(part)) + "]"
    return out
