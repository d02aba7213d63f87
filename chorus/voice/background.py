"""voice_settings.background_sound as LiveKit's BackgroundAudioPlayer: `office` plays the office ambience clip
shipped in the livekit-agents wheel, `custom` a local audio file (custom_url; validation refuses URLs, nothing
is downloaded), `off` or nothing plays none. The same player carries the hold music of a warm transfer."""

from __future__ import annotations

import logging
from pathlib import Path

from livekit.agents.voice.background_audio import AudioConfig, BackgroundAudioPlayer, BuiltinAudioClip

from chorus.agents.configs.models import BotConfig

log = logging.getLogger(__name__)

AMBIENT_VOLUME = 0.5  # under the voice: ambience, not a soundtrack
HOLD_MUSIC = AudioConfig(BuiltinAudioClip.HOLD_MUSIC, volume=0.8)


def ambient_sound(cfg: BotConfig) -> AudioConfig | None:
    sound = cfg.voice_settings.background_sound if cfg.voice_settings else None
    if sound is None or sound.type == "off" or (sound.type is None and sound.custom_url is None):
        return None
    if sound.type == "office":
        return AudioConfig(BuiltinAudioClip.OFFICE_AMBIENCE, volume=AMBIENT_VOLUME)
    path = Path(sound.custom_url or "")
    if not path.is_file():  # checked here, on the worker that plays it, not where the config was validated
        log.warning("background_sound.custom_url %s is not a file on this worker: no background sound", path)
        return None
    return AudioConfig(str(path), volume=AMBIENT_VOLUME)


def background_player(cfg: BotConfig) -> BackgroundAudioPlayer:
    """The call's player (start it with the room): the configured ambience, if any; hold music on demand."""
    ambient = ambient_sound(cfg)
    return BackgroundAudioPlayer(ambient_sound=ambient) if ambient is not None else BackgroundAudioPlayer()
