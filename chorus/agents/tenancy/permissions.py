"""Roles and what they may do: the seed's five roles (001 §6) with its eight config_permissions, and the
level each role has on the rest of the API. The one table: docs/api.md and docs/security.md print it,
`GET /api/v1/configs/permissions` serves it, tests/test_roles.py walks every route with every role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["organization_admin", "config_manager", "developer", "viewer", "platform_engineer"]
ROLES: tuple[Role, ...] = ("organization_admin", "config_manager", "developer", "viewer", "platform_engineer")
# Names a role may also be given by; `admin` is what keys were called before the seed's roles (migration
# 015 renamed the stored keys; clients and scripts that still say `admin` keep working).
ROLE_ALIASES: dict[str, Role] = {"admin": "organization_admin"}
RoleName = Literal["organization_admin", "config_manager", "developer", "viewer", "platform_engineer", "admin"]

ConfigPermission = Literal[
    "view_config",
    "edit_system_prompt",
    "add_remove_tools",
    "modify_integrations",
    "change_voice_params",
    "deploy_to_production",
    "rollback_versions",
    "manage_permissions",
]
CONFIG_PERMISSIONS: tuple[ConfigPermission, ...] = (
    "view_config",
    "edit_system_prompt",
    "add_remove_tools",
    "modify_integrations",
    "change_voice_params",
    "deploy_to_production",
    "rollback_versions",
    "manage_permissions",
)

# The rest of the API (threads, runs, knowledge, keys, secrets…) has three levels, the roles Chorus had before
# the seed's: `viewer` reads, `developer` also writes, `organization_admin` also manages keys and secrets.
ApiLevel = Literal["viewer", "developer", "organization_admin"]
API_LEVELS: tuple[ApiLevel, ...] = ("viewer", "developer", "organization_admin")


@dataclass(frozen=True)
class RoleGrant:
    role: Role
    api_level: ApiLevel
    config_permissions: frozenset[ConfigPermission]
    summary: str

    def permissions_map(self) -> dict[str, bool]:
        """The seed's `config_permissions` object: every permission, true or false."""
        return {p: p in self.config_permissions for p in CONFIG_PERMISSIONS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "api_level": self.api_level,
            "config_permissions": self.permissions_map(),
            "summary": self.summary,
        }


_ALL = frozenset(CONFIG_PERMISSIONS)
GRANTS: dict[Role, RoleGrant] = {
    grant.role: grant
    for grant in (
        RoleGrant(
            "organization_admin",
            "organization_admin",
            _ALL,
            "everything, including keys, secrets and permissions; approves medium and high risk changes",
        ),
        RoleGrant(
            "config_manager",
            "viewer",
            frozenset({"view_config", "edit_system_prompt", "change_voice_params", "rollback_versions"}),
            "day-to-day edits of prompts and voice, rollback; no tools, integrations, deploys or permissions",
        ),
        RoleGrant(
            "developer",
            "developer",
            _ALL - {"manage_permissions"},
            "builds and runs bots: every config edit and deploy; no keys, secrets or permissions",
        ),
        RoleGrant("viewer", "viewer", frozenset({"view_config"}), "reads configs, history, threads and runs"),
        RoleGrant(
            "platform_engineer",
            "developer",
            _ALL - {"manage_permissions"},
            "as developer, and approves high risk changes with an organization admin",
        ),
    )
}


def canonical_role(name: str) -> Role:
    """The role a name stands for (`admin` is `organization_admin`); ValueError for anything else."""
    role = ROLE_ALIASES.get(name, name)
    for known in ROLES:
        if known == role:
            return known
    raise ValueError(f"role must be one of {', '.join(ROLES)} ('admin' means organization_admin), not '{name}'")


def has_api_level(role: Role, level: ApiLevel) -> bool:
    return API_LEVELS.index(GRANTS[role].api_level) >= API_LEVELS.index(level)


def roles_with_api_level(level: ApiLevel) -> tuple[Role, ...]:
    return tuple(r for r in ROLES if has_api_level(r, level))


def has_permission(role: Role, permission: ConfigPermission) -> bool:
    return permission in GRANTS[role].config_permissions


def roles_with_permission(permission: ConfigPermission) -> tuple[Role, ...]:
    return tuple(r for r in ROLES if has_permission(r, permission))
