"""`chorus voice speak` and `chorus voice simulate`: a call on audio files from the command line."""

from __future__ import annotations

import wave
from pathlib import Path

from chorus.voice.audio_files import read_wav
from chorus.voice.offline_stt import recognise_pcm
from tests.conftest import EXAMPLES
from tests.test_cli import run_cli

SCHEDULER = str(EXAMPLES / "healthcare_scheduler.json")


def test_simulate_a_call_on_wav_files(database_url: str, tmp_path: Path) -> None:
    caller, reply = tmp_path / "caller.wav", tmp_path / "reply.wav"
    spoke = run_cli(["voice", "speak", "hello there", "--out", str(caller)], database_url, tmp_path)
    assert spoke.returncode == 0, spoke.stderr
    out = run_cli(
        ["voice", "simulate", SCHEDULER, "--in", str(caller), "--out", str(reply), "--tenant", "cli-voice"],
        database_url,
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "bot: Thank you for calling HealthCare Plus. How can I help you today?" in out.stdout
    assert "\ncaller: " in out.stdout
    assert "e2e_latency" in out.stdout  # per-turn metrics
    pcm, rate = read_wav(reply)
    assert len(pcm) / 2 / rate > 3  # the greeting and an answer
    assert "thank you for" in recognise_pcm(pcm, rate)


def test_simulate_refuses_bad_input_with_what_to_fix(database_url: str, tmp_path: Path) -> None:
    caller = tmp_path / "caller.wav"
    with wave.open(str(caller), "wb") as w:  # stereo: refused with how to convert it
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 3200)
    reply = str(tmp_path / "reply.wav")
    cases = [
        (
            ["voice", "simulate", str(EXAMPLES / "acme_support_bot.json"), "--in", str(caller), "--out", reply],
            "needs a voicebot",
        ),
        (["voice", "simulate", SCHEDULER, "--in", str(tmp_path / "none.wav"), "--out", reply], "no such file"),
        (["voice", "simulate", SCHEDULER, "--in", str(caller), "--out", reply], "16-bit mono"),
        (["voice", "simulate", SCHEDULER, "--in", str(caller), "--out", "/nonexistent/dir/r.wav"], "does not exist"),
        (["voice", "simulate", str(tmp_path / "missing.json"), "--in", str(caller), "--out", reply], "no such file"),
    ]
    for args, message in cases:
        out = run_cli(args, database_url, tmp_path)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr, (args, out.stderr)
    assert not Path(reply).exists()
