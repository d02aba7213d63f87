"""How Chorus reaches a LiveKit server's API (SIP provisioning, agent dispatch for outbound calls): the
LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET the worker uses too, read when needed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from livekit import api

from chorus.agents.errors import Unavailable

LIVEKIT_ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")


@dataclass(frozen=True)
class LiveKitAccess:
    url: str
    api_key: str
    api_secret: str = field(repr=False)

    @classmethod
    def from_env(cls) -> LiveKitAccess:
        missing = [name for name in LIVEKIT_ENV if not os.environ.get(name)]
        if missing:
            raise Unavailable(
                f"set {', '.join(missing)}: Chorus calls your LiveKit server's API "
                "(e.g. LIVEKIT_URL=wss://your-project.livekit.cloud)"
            )
        return cls(os.environ["LIVEKIT_URL"], os.environ["LIVEKIT_API_KEY"], os.environ["LIVEKIT_API_SECRET"])

    def client(self) -> api.LiveKitAPI:
        """A LiveKit API client (an aiohttp session inside: use `async with`)."""
        return api.LiveKitAPI(self.url, self.api_key, self.api_secret)
