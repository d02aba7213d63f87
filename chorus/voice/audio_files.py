"""Audio in and out of a voice session without a LiveKit room: a WAV file as the caller's microphone, and a
sink that plays the bot's speech in real time (so barge-in and playback positions behave as on a call) and
keeps what was played for a WAV file."""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

from livekit import rtc
from livekit.agents.voice import io

FRAME_MS = 20


def read_wav(path: Path) -> tuple[bytes, int]:
    """16-bit mono PCM and its sample rate; anything else is refused with what to do."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError("expected 16-bit mono WAV (convert with `sox in.wav -b 16 -c 1 out.wav`)")
        return w.readframes(w.getnframes()), w.getframerate()


def write_wav(path: Path, pcm: bytes, sample_rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)


def frames(pcm: bytes, sample_rate: int) -> list[rtc.AudioFrame]:
    step = sample_rate * FRAME_MS // 1000
    out = []
    for at in range(0, len(pcm) // 2, step):
        chunk = pcm[at * 2 : (at + step) * 2]
        chunk += b"\0" * (step * 2 - len(chunk))
        out.append(rtc.AudioFrame(chunk, sample_rate, 1, step))
    return out


class WavAudioInput(io.AudioInput):
    """Frames of PCM at real-time pace, then silence for ever (a caller who stopped talking)."""

    def __init__(self, pcm: bytes, sample_rate: int) -> None:
        super().__init__(label="wav-input")
        self.sample_rate = sample_rate
        self._frames: AsyncIterator[rtc.AudioFrame] = self._pace(frames(pcm, sample_rate))
        self._more: asyncio.Queue[list[rtc.AudioFrame]] = asyncio.Queue()

    def say(self, pcm: bytes) -> None:
        """Queue more caller speech (played after what is queued)."""
        self._more.put_nowait(frames(pcm, self.sample_rate))

    async def _pace(self, first: list[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
        step = self.sample_rate * FRAME_MS // 1000
        silence = rtc.AudioFrame(b"\0" * step * 2, self.sample_rate, 1, step)
        queued = list(first)
        started = time.monotonic()
        sent = 0
        while True:
            if not queued and not self._more.empty():
                queued = self._more.get_nowait()
            frame = queued.pop(0) if queued else silence
            sent += 1
            await asyncio.sleep(max(0.0, started + sent * FRAME_MS / 1000 - time.monotonic()))
            yield frame

    async def __anext__(self) -> rtc.AudioFrame:
        return await self._frames.__anext__()


class PlayedAudioOutput(io.AudioOutput):
    """Plays captured speech in real time (a phone line would), reports where playback stopped when cleared,
    and keeps the played audio (`pcm`)."""

    def __init__(self, *, sample_rate: int = 22050) -> None:
        super().__init__(label="played", capabilities=io.AudioOutputCapabilities(pause=False), sample_rate=sample_rate)
        self.pcm = bytearray()
        self._queue: asyncio.Queue[rtc.AudioFrame | None] = asyncio.Queue()
        self._position = 0.0  # seconds played of the current segment
        self._started = False
        self._task: asyncio.Task[None] | None = None

    def _ensure_playing(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._play())

    async def _play(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                position, self._position, self._started = self._position, 0.0, False
                self.on_playback_finished(playback_position=position, interrupted=False)
                continue
            if not self._started:
                self._started = True
                self.on_playback_started(created_at=time.time())
            await asyncio.sleep(item.duration)
            self.pcm += bytes(item.data)
            self._position += item.duration

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self._ensure_playing()
        self._queue.put_nowait(frame)

    def flush(self) -> None:
        super().flush()
        self._queue.put_nowait(None)

    def clear_buffer(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        while not self._queue.empty():
            self._queue.get_nowait()
        position = self._position
        self._position, self._started = 0.0, False
        for _ in range(self._pending_playback_count):
            self.on_playback_finished(playback_position=position, interrupted=True)
            position = 0.0

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
