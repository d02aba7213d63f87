"""GitOps on the client side of `chorus config apply | pull`: reading config files (each problem said with its
file), the plan and the result as lines for the terminal, and the files a pull writes. Pure functions but
for the file reads and writes; the planning itself is the server's (POST /api/v1/configs/apply)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chorus.agents.errors import InvalidInput

# Only JSON: Chorus reads no YAML configs anywhere (docs/operations.md, "GitOps").
SUFFIXES = (".json",)
MAX_FILE_BYTES = 1024 * 1024
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


@dataclass(frozen=True)
class ConfigFile:
    path: str  # relative to the directory applied (or the file's name): its identity in the apply history
    config: Any


def config_paths(target: Path) -> list[tuple[str, Path]]:
    """(name, path) of the files to apply: a file, or every *.json directly in a directory, sorted."""
    if target.is_file():
        return [(target.name, target)]
    if target.is_dir():
        return [(p.name, p) for p in sorted(target.iterdir()) if p.is_file() and p.suffix in SUFFIXES]
    raise InvalidInput(f"{target}: no such file or directory; give a config file or a directory of them")


def read_config_files(target: Path) -> list[ConfigFile]:
    """Every config file of `target`, parsed; every file that cannot be read or is not a JSON object is
    listed in one InvalidInput (nothing is applied when one is wrong)."""
    paths = config_paths(target)
    if not paths:
        raise InvalidInput(f"{target} holds no *.json config file; `chorus config pull {target}` writes some")
    files: list[ConfigFile] = []
    problems: list[dict[str, Any]] = []
    for name, path in paths:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ValueError(f"larger than {MAX_FILE_BYTES // 1024} KiB: is it a bot config?")
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno} column {exc.colno}"
            problems.append({"path": name, "message": f"not valid JSON: {exc.msg} at {where}"})
            continue
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            problems.append({"path": name, "message": f"cannot be read: {exc}"})
            continue
        if not isinstance(data, dict) or "config_metadata" not in data:
            problems.append(
                {"path": name, "message": "not a bot config (a JSON object with config_metadata, system_prompt…)"}
            )
            continue
        files.append(ConfigFile(name, data))
    if problems:
        raise InvalidInput(
            f"nothing applied: {len(problems)} of {len(paths)} file(s) cannot be applied; fix each one listed",
            errors=problems,
        )
    return files


def short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def diff_lines(diff: dict[str, dict[str, Any]], indent: str = "      ", limit: int = 12) -> list[str]:
    """`system_prompt.tone: "friendly" → "formal"`, one line a field, at most `limit` of them."""
    lines = [f"{indent}{path}: {short(c.get('old'))} → {short(c.get('new'))}" for path, c in list(diff.items())[:limit]]
    if len(diff) > limit:
        lines.append(f"{indent}… and {len(diff) - limit} more (chorus config diff shows all once applied)")
    return lines


def _approvers(roles: list[str]) -> str:
    return " and ".join(roles)


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """The plan (POST /api/v1/configs/apply?dry_run): a line a file, a short diff under each change."""
    lines: list[str] = []
    for f in plan["files"]:
        name, cid, cur = f["path"], f["config_id"] or "-", f["current_version"]
        action = f["action"]
        if action == "create":
            lines.append(f"  + {name}: {cid} will be created")
        elif action == "change":
            wait = (
                f", will wait for approval from {_approvers(f['approval_required_from'])} ({f['risk_level']} risk)"
                if f["approval_required_from"]
                else ""
            )
            lines.append(f"  ~ {name}: {cid} will change (now v{cur}){wait}")
            lines.extend(diff_lines(f["diff"]))
        elif action == "unchanged":
            lines.append(f"  = {name}: {cid} unchanged (v{cur})")
        elif action == "pending":
            who = _approvers(f["approval_required_from"]) or "its approvers"
            lines.append(f"  … {name}: {cid} already waits for approval as v{f['pending_version']} (from {who})")
        else:
            lines.append(f"  ✗ {name}: {cid} is not a valid config")
        if f["drift"]:
            d = f["drift"]
            lines.append(
                f"    ! drift: changed on the server since its last apply (v{d['applied_version']} -> "
                f"v{d['current_version']}: {', '.join(d['versions_since'])}):"
            )
            lines.extend(diff_lines(d["diff"]))
        if f["applied_as"]:
            lines.append(f"    ! this file was applied as config '{f['applied_as']}' and now says '{cid}'")
        for problem in f["blocked_by"]:
            lines.append(f"    ✗ {problem}")
    s = plan["summary"]
    waits = f" ({s['requires_approval']} will wait for approval)" if s["requires_approval"] else ""
    lines.append(
        f"Plan: {s['create']} to create, {s['change']} to change{waits}, {s['unchanged']} unchanged, "
        f"{s['pending']} waiting for approval" + (f"; {s['blocked']} file(s) with problems" if s["blocked"] else "")
    )
    return lines


def has_work(plan: dict[str, Any]) -> bool:
    return bool(plan["summary"]["create"] or plan["summary"]["change"])


def result_lines(result: dict[str, Any]) -> list[str]:
    """What an apply did: each version made, and who must approve the ones that wait."""
    lines: list[str] = []
    for f in result["files"]:
        if f["version"] is None:
            continue
        cid, v = f["config_id"], f["version"]
        if f["status"] == "pending_approval":
            lines.append(
                f"  {cid}: v{v} waits for approval from {_approvers(f['approval_required_from'])} "
                f"(v{f['current_version']} stays current): chorus config approve {cid} {v}"
            )
        else:
            lines.append(f"  {cid}: v{v} {'created' if f['action'] == 'create' else 'is current'}")
    made = sum(1 for f in result["files"] if f["version"] is not None)
    waiting = sum(1 for f in result["files"] if f["status"] == "pending_approval")
    lines.append(f"Applied: {made} version(s) made, {waiting} waiting for approval.")
    return lines


def export_text(config: dict[str, Any]) -> str:
    """A config as `pull` writes it: without the version number Chorus stamps into it (not content), keys
    sorted, 2-space indent, a trailing newline. Configs hold `${secret:NAME}` references, never values."""
    meta = config.get("config_metadata")
    if isinstance(meta, dict):
        config = {**config, "config_metadata": {k: v for k, v in meta.items() if k != "version"}}
    return json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def pull_targets(directory: Path, configs: list[dict[str, Any]]) -> list[tuple[Path, str]]:
    """Where each pulled config goes: the *.json file of `directory` that already holds its id (so a pull
    into a working copy updates its files), else `<config_id>.json`."""
    holder: dict[str, Path] = {}
    if directory.is_dir():
        for p in sorted(directory.iterdir()):
            if p.is_symlink() or not (p.is_file() and p.suffix in SUFFIXES):
                continue
            try:
                meta = json.loads(p.read_text(encoding="utf-8")).get("config_metadata", {})
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(meta, dict) and isinstance(meta.get("config_id"), str):
                holder.setdefault(meta["config_id"], p)
    out = []
    for config in configs:
        key = config["config_metadata"]["config_id"]
        if not isinstance(key, str) or not _SAFE_NAME.match(key):  # ids are checked when stored; never a path
            raise InvalidInput(f"config id {key!r} cannot be a file name; pull it with --config into a file of yours")
        target = holder.get(key, directory / f"{key}.json")
        if target.is_symlink():  # a link could point anywhere: pull writes only files of the directory itself
            raise InvalidInput(f"{target} is a symbolic link; pull writes only plain files of {directory}")
        out.append((target, export_text(config)))
    return out
