"""background_sound: office is LiveKit's office ambience clip from the wheel, custom a local file, off none; a URL
is refused when the config is validated (nothing is downloaded at call time)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from livekit.agents.voice.background_audio import BuiltinAudioClip

from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.validation import validate_config
from chorus.agents.tools.builtins import build_registry
from chorus.voice.background import ambient_sound, background_player
from tests.conftest import example


def with_sound(sound: dict[str, Any] | None) -> dict[str, Any]:
    raw = example("healthcare_scheduler")
    raw["voice_settings"]["background_sound"] = sound
    return raw


def test_office_is_the_office_ambience_shipped_in_the_wheel() -> None:
    sound = ambient_sound(BotConfig.model_validate(with_sound({"type": "office", "custom_url": None})))
    assert sound is not None and sound.source is BuiltinAudioClip.OFFICE_AMBIENCE
    assert Path(BuiltinAudioClip.OFFICE_AMBIENCE.path()).stat().st_size > 10_000
    assert 0 < sound.volume < 1


@pytest.mark.parametrize("sound", [None, {"type": "off"}, {}])
def test_off_or_absent_is_silence(sound: dict[str, Any] | None) -> None:
    assert ambient_sound(BotConfig.model_validate(with_sound(sound))) is None


def test_a_custom_file_of_the_sounds_folder_is_played_and_a_missing_one_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "sounds"
    (folder / "brand").mkdir(parents=True)
    monkeypatch.setenv("CHORUS_VOICE_SOUNDS_DIR", str(folder))
    clip = folder / "brand" / "lobby.ogg"
    clip.write_bytes(Path(BuiltinAudioClip.CITY_AMBIENCE.path()).read_bytes())
    sound = ambient_sound(BotConfig.model_validate(with_sound({"type": "custom", "custom_url": "brand/lobby.ogg"})))
    assert sound is not None and sound.source == str(clip.resolve())
    missing = BotConfig.model_validate(with_sound({"type": "custom", "custom_url": "gone.ogg"}))
    with caplog.at_level(logging.WARNING):
        assert ambient_sound(missing) is None  # the call goes on without it
    assert "gone.ogg is not a file in" in caplog.text
    # A link out of the folder is never followed to the worker's other files.
    secret = tmp_path / "secret.txt"
    secret.write_text("the worker's own file")
    (folder / "escape.ogg").symlink_to(secret)
    escaping = BotConfig.model_validate(with_sound({"type": "custom", "custom_url": "escape.ogg"}))
    with caplog.at_level(logging.WARNING):
        assert ambient_sound(escaping) is None
    assert "leads out of" in caplog.text


async def test_the_player_is_built_from_the_config() -> None:
    player = background_player(BotConfig.model_validate(with_sound({"type": "office"})))
    assert player._ambient_sound is not None and player._ambient_sound.source is BuiltinAudioClip.OFFICE_AMBIENCE
    assert background_player(BotConfig.model_validate(with_sound({"type": "off"})))._ambient_sound is None


@pytest.mark.parametrize(
    ("sound", "message"),
    [
        ({"type": "custom", "custom_url": "https://cdn.example.com/office.mp3"}, "Chorus downloads nothing"),
        ({"type": "custom", "custom_url": "file:///tmp/a.ogg"}, "give its local path"),
        ({"type": "custom"}, "type custom needs custom_url"),
        ({"type": "office", "custom_url": "sound.ogg"}, "set type to custom"),
        ({"type": "custom", "custom_url": "/etc/passwd"}, "in the voice worker's sounds folder"),
        ({"type": "custom", "custom_url": "../../etc/shadow"}, "without '..'"),
        ({"type": "custom", "custom_url": "~/.ssh/id_rsa"}, "CHORUS_VOICE_SOUNDS_DIR"),
        ({"type": "jungle"}, "use one of: office, off, custom"),
    ],
)
def test_bad_background_sound_is_a_clear_validation_error(sound: dict[str, Any], message: str) -> None:
    report = validate_config(with_sound(sound), registry=build_registry())
    assert report.config is None
    assert any(
        p.path.startswith("$.voice_settings.background_sound") and message in p.message for p in report.errors
    ), [(p.path, p.message) for p in report.errors]


def test_transfer_mode_is_cold_unless_warm() -> None:
    raw = example("healthcare_scheduler")
    cfg = BotConfig.model_validate(raw)
    assert cfg.workflow_features.call_transfer is not None
    assert {d.mode for d in cfg.workflow_features.call_transfer.transfer_destinations} == {"cold"}
    raw["workflow_features"]["call_transfer"]["transfer_destinations"][0]["mode"] = "lukewarm"
    report = validate_config(raw, registry=build_registry())
    assert any("transfer_destinations[0].mode" in p.path for p in report.errors)
