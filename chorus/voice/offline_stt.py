"""Offline speech recognition: PocketSphinx (its US English model ships in the wheel) behind LiveKit's
`stt.STT`, chosen with stt_provider `offline`. It recognises whole utterances; the session cuts them with the
VAD (LiveKit's StreamAdapter). Accuracy is modest: enough for tests and `chorus voice simulate`."""

from __future__ import annotations

import asyncio
import queue
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import stt
from livekit.agents.language import LanguageCode
from livekit.agents.types import NOT_GIVEN, APIConnectOptions, NotGivenOr
from livekit.agents.utils import AudioBuffer, shortuuid
from pocketsphinx import Decoder

SAMPLE_RATE = 16000  # the rate of the bundled acoustic model
# Loaded decoders not in use. Loading the model takes about a second (bench.voice_turn_latency), which every
# caller turn paid; a decoder gives the same words when reused. One per concurrent recognition (threads).
_IDLE: queue.SimpleQueue[Decoder] = queue.SimpleQueue()


def recognise_pcm(pcm: bytes, sample_rate: int) -> str:
    """The words PocketSphinx hears in 16-bit mono PCM (resampled to 16 kHz when needed)."""
    if sample_rate != SAMPLE_RATE:
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
        count = int(len(samples) * SAMPLE_RATE / sample_rate)
        positions = np.linspace(0, len(samples) - 1, count) if count else np.zeros(0)
        pcm = np.interp(positions, np.arange(len(samples)), samples).astype(np.int16).tobytes()
    try:
        decoder = _IDLE.get_nowait()
    except queue.Empty:
        decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    _IDLE.put(decoder)  # not after a failure: a decoder left mid-utterance is dropped
    return str(hyp.hypstr) if hyp is not None else ""


class PocketSphinxSTT(stt.STT[Any]):
    def __init__(self, *, language: str = "en-US") -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self.language = language

    @property
    def model(self) -> str:
        return "pocketsphinx-en-us"

    @property
    def provider(self) -> str:
        return "offline"

    async def _recognize_impl(
        self, buffer: AudioBuffer, *, language: NotGivenOr[str] = NOT_GIVEN, conn_options: APIConnectOptions
    ) -> stt.SpeechEvent:
        frame = rtc.combine_audio_frames(buffer)
        mono: Any = frame
        if frame.num_channels != 1:
            data = np.frombuffer(bytes(frame.data), dtype=np.int16).reshape(-1, frame.num_channels)
            mono = rtc.AudioFrame(data.mean(axis=1).astype(np.int16).tobytes(), frame.sample_rate, 1, len(data))
        text = await asyncio.to_thread(recognise_pcm, bytes(mono.data), mono.sample_rate)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=shortuuid(),
            alternatives=[stt.SpeechData(language=LanguageCode(self.language), text=text, confidence=1.0)],
        )
