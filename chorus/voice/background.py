"""voice_settings.background_sound as LiveKit's BackgroundAudioPlayer: `office` plays the office ambience clip
shipped in the livekit-agents wheel, `custom` a local audio file (custom_url; validation refuses URLs, nothing
is downloaded), `off` or nothing plays none. The same player carries the hold music of a warm transfer."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from livekit.agents.voice.background_audio import AudioConfig, BackgroundAudioPlayer, BuiltinAudioClip

from chorus.agents.configs.models import BotConfig

log = logging.getLogger(__name__)

AMBIENT_VOLUME = 0.5  # under the voice: ambience, not a soundtrack
SOUNDS_DIR_ENV = "CHORUS_VOICE_SOUNDS_DIR"
HOLD_MUSIC = AudioConfig(BuiltinAudioClip.HOLD_MUSIC, volume=0.8)


def ambient_sound(cfg: BotConfig) -> AudioConfig | None:
    sound = cfg.voice_settings.background_sound if cfg.voice_settings else None
    if sound is None or sound.type == "off" or (sound.type is None and sound.custom_url is None):
        return None
    if sound.type == "office":
        return AudioConfig(BuiltinAudioClip.OFFICE_AMBIENCE, volume=AMBIENT_VOLUME)
    folder = sounds_dir().resolve()
    path = (folder / (sound.custom_url or "")).resolve()
    if not path.is_relative_to(folder):  # a symbolic link out of the folder: never a worker's other files
        log.warning("background_sound.custom_url %s leads out of %s: no background sound", sound.custom_url, folder)
        return None
    if not path.is_file():  # checked here, on the worker that plays it, not where the config was validated
        log.warning("background_sound.custom_url %s is not a file in %s: no background sound", sound.custom_url, folder)
        return None
    return AudioConfig(str(path), volume=AMBIENT_VOLUME)


def sounds_dir() -> Path:
    """Where a config's custom background sounds are (by name): CHORUS_VOICE_SOUNDS_DIR, or
    $CHORUS_HOME/sounds. A config names a file in it, never a path of the worker's own."""
    configured = os.environ.get(SOUNDS_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get("CHORUS_HOME", ".chorus")) / "sounds"


def background_player(cfg: BotConfig) -> BackgroundAudioPlayer:
    """The call's player (start it with the room): the configured ambience, if any; hold music on demand."""
    ambient = ambient_sound(cfg)
    return BackgroundAudioPlayer(ambient_sound=ambient) if ambient is not None else BackgroundAudioPlayer()
