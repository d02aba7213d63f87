"""Which of the server's model keys a bot config may use, and where they may be sent.

The server's environment holds the operator's keys (OPENAI_API_KEY, ANTHROPIC_API_KEY, …) next to its own
secrets (CHORUS_SECRET_KEY, DATABASE_URL, …). A config is written by a tenant's developer, so it must not be
able to read the environment by naming a variable in `api_key_env`, nor send the operator's key to a server
of its choosing through `base_url`. So:

- `api_key_env` may name only the providers' default key variables and those the operator lists in
  `CHORUS_MODEL_KEY_ENVS` (comma-separated);
- a key from the environment is sent only to the provider's own API (no `base_url`) or to a base URL the
  operator trusts: one that starts with an entry of `CHORUS_MODEL_BASE_URLS` (comma-separated URL prefixes).
  A model at any other base URL gets no key from the server (an OpenAI-compatible server that needs none,
  such as a local one, works as before).
"""

from __future__ import annotations

import os

DEFAULT_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "openai_compatible": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}
KEY_ENVS_SETTING = "CHORUS_MODEL_KEY_ENVS"
BASE_URLS_SETTING = "CHORUS_MODEL_BASE_URLS"


def _listed(setting: str) -> list[str]:
    return [item.strip() for item in os.environ.get(setting, "").split(",") if item.strip()]


def allowed_key_envs() -> list[str]:
    """The environment variables a config's `api_key_env` may name on this server."""
    return sorted(set(DEFAULT_KEY_ENV.values()) | set(_listed(KEY_ENVS_SETTING)))


def key_env_problem(name: str) -> str | None:
    if name in allowed_key_envs():
        return None
    return (
        f"api_key_env '{name}' is not a model key this server lets configs use (allowed: "
        f"{', '.join(allowed_key_envs())}); the operator adds names with {KEY_ENVS_SETTING}"
    )


def trusted_base_url(url: str) -> bool:
    """A base URL the operator lets the server's keys go to."""
    return any(url.startswith(prefix) for prefix in _listed(BASE_URLS_SETTING))


def server_key_for(provider: str, api_key_env: str | None, base_url: str | None) -> str | None:
    """The server's key for a model spec, or None when it must not get one (the rules above). Raises
    ValueError when `api_key_env` names a variable configs may not use."""
    if api_key_env is not None and (problem := key_env_problem(api_key_env)):
        raise ValueError(problem)
    if base_url is not None and not trusted_base_url(base_url):
        return None
    return os.environ.get(api_key_env or DEFAULT_KEY_ENV[provider])
