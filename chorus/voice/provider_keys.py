"""The speech providers' API keys for one call (a module of its own: light to import)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProviderKeys:
    """API keys of the speech providers, from the tenant's vault (never the config, never logged)."""

    deepgram: str | None = field(default=None, repr=False)
    elevenlabs: str | None = field(default=None, repr=False)
