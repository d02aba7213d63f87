"""The bot config JSON Schema (2020-12): generated from the models, committed under configs/schema/."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from chorus.agents.configs.models import BotConfig

SCHEMA_ID = "https://chorus.dev/schemas/bot.schema.json"
SCHEMA_PATH = Path(__file__).resolve().parents[3] / "configs" / "schema" / "bot.schema.json"


def generate_schema() -> dict[str, Any]:
    schema = BotConfig.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render_schema() -> str:
    return json.dumps(generate_schema(), indent=2, sort_keys=True) + "\n"


@cache
def bot_schema() -> dict[str, Any]:
    """The committed schema when present (what users read), else the generated one."""
    if SCHEMA_PATH.exists():
        loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        return loaded
    return generate_schema()
