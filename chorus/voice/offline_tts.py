"""Offline speech: espeak-ng (the Debian package) behind LiveKit's `tts.TTS`, chosen with tts_provider `offline`.

No network and no model download; the voice is robotic but intelligible, which is what tests and
`chorus voice simulate` need. LiveKit's session streams sentences into it through its StreamAdapter.
"""

from __future__ import annotations

import asyncio
import shutil
import struct
from typing import Any

from livekit.agents import tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.utils import shortuuid

from chorus.agents.errors import ProviderUnavailable

SAMPLE_RATE = 22050  # what espeak-ng writes
_BASE_WPM = 175  # espeak-ng's default speaking rate
# The US English voice PocketSphinx understands best of those tried (en-us, +m3, +m7, +f2, +f3, +f4).
VOICE = "en-us+f2"


def espeak_binary() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        raise ProviderUnavailable(
            "the offline TTS needs espeak-ng: install it (`apt-get install -y espeak-ng`) or choose another "
            "tts_provider"
        )
    return found


def pcm_from_wav(data: bytes) -> tuple[bytes, int]:
    """The 16-bit PCM samples and sample rate of espeak-ng's WAV output (its header sizes are unreliable when it
    writes to a pipe, so the chunks are walked, and the data chunk runs to the end)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("espeak-ng did not write a WAV file")
    pos, rate = 12, SAMPLE_RATE
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if kind == b"fmt ":
            rate = struct.unpack("<I", data[pos + 12 : pos + 16])[0]
        if kind == b"data":
            pcm = data[pos + 8 :]
            return pcm[: len(pcm) - len(pcm) % 2], rate
        pos += 8 + size
    raise ValueError("espeak-ng's WAV output has no data")


async def synthesize_pcm(text: str, *, voice: str = VOICE, speed: float = 1.0) -> tuple[bytes, int]:
    """Speak `text` with espeak-ng: 16-bit mono PCM and its sample rate."""
    wpm = max(80, min(450, round(_BASE_WPM * speed)))
    proc = await asyncio.create_subprocess_exec(
        espeak_binary(),
        "--stdout",
        "-v",
        voice,
        "-s",
        str(wpm),
        "--",
        text,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng failed: {err.decode(errors='replace').strip()}")
    return pcm_from_wav(out)


class EspeakTTS(tts.TTS[Any]):
    def __init__(self, *, voice: str = VOICE, speed: float = 1.0) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=SAMPLE_RATE, num_channels=1)
        espeak_binary()  # fail when the session is built, not on the first sentence
        self.voice = voice
        self.speed = speed

    @property
    def model(self) -> str:
        return "espeak-ng"

    @property
    def provider(self) -> str:
        return "offline"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _EspeakStream(tts=self, input_text=text, conn_options=conn_options)


class _EspeakStream(tts.ChunkedStream):
    def __init__(self, *, tts: EspeakTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._espeak = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        pcm, rate = await synthesize_pcm(self.input_text, voice=self._espeak.voice, speed=self._espeak.speed)
        output_emitter.initialize(request_id=shortuuid(), sample_rate=rate, num_channels=1, mime_type="audio/pcm")
        output_emitter.push(pcm)
        output_emitter.flush()
