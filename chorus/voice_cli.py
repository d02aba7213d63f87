"""`chorus voice …`: voicebots from the command line. `simulate` runs a call on audio files, in-process."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
import wave
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from chorus.cli_tenant import DEFAULT_TENANT, TenantOption

voice_app = typer.Typer(help="Voicebots: LiveKit Agents voice sessions on the bot's graph.", no_args_is_help=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@voice_app.command()
def simulate(
    config: Annotated[Path, typer.Argument(help="A voicebot config JSON file.")],
    input_wav: Annotated[Path, typer.Option("--in", help="The caller's speech: a 16-bit mono WAV file.")],
    output_wav: Annotated[Path, typer.Option("--out", help="Where to write the bot's side of the call (WAV).")],
    offline: Annotated[bool, typer.Option(help="Answer with the offline development model, on purpose.")] = False,
    max_seconds: Annotated[float, typer.Option(help="Stop the call after this long.", min=1, max=600)] = 60.0,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Run a whole call on audio files, without a LiveKit server: the caller's WAV through Silero VAD and the
    offline STT (PocketSphinx) to the config's graph, the answers through the offline TTS (espeak-ng) into
    --out. Prints the transcript and LiveKit's per-turn metrics. Speech providers are always the offline ones
    here; the model is the config's own (set OPENAI_API_KEY) unless --offline."""
    from chorus.agents.configs.models import BotConfig
    from chorus.voice.audio_files import read_wav

    if not config.is_file():
        _fail(f"{config}: no such file")
    try:
        raw = json.loads(config.read_text(encoding="utf-8"))
        cfg = BotConfig.model_validate(raw)
    except (ValueError, OSError) as exc:
        _fail(f"{config} is not a valid bot config: {exc} (check it with `chorus config validate {config}`)")
    if cfg.config_metadata.product_type != "voicebot":
        _fail(f"{config} is a {cfg.config_metadata.product_type} config; simulate needs a voicebot")
    if not output_wav.parent.is_dir():
        _fail(f"--out {output_wav}: the folder {output_wav.parent} does not exist")
    if not input_wav.is_file():
        _fail(f"--in {input_wav}: no such file")
    try:
        pcm, rate = read_wav(input_wav)
    except (wave.Error, EOFError, ValueError) as exc:
        _fail(f"--in {input_wav}: {exc}")
    if not pcm:
        _fail(f"--in {input_wav} holds no audio")
    if offline:
        os.environ["CHORUS_OFFLINE"] = "1"
    asyncio.run(_simulate(cfg, pcm, rate, output_wav, tenant=tenant, max_seconds=max_seconds))


async def _simulate(cfg: object, pcm: bytes, rate: int, output_wav: Path, *, tenant: str, max_seconds: float) -> None:
    from chorus.agents.configs.models import BotConfig
    from chorus.agents.errors import ChorusError
    from chorus.agents.settings import load_settings
    from chorus.agents.storage.database import open_database
    from chorus.agents.tenancy.keys import ensure_tenant
    from chorus.agents.tools.builtins import build_registry
    from chorus.graphs.checkpointer import ChorusCheckpointer
    from chorus.graphs.compiler import GraphDeps, compile_bot
    from chorus.voice.audio_files import write_wav
    from chorus.voice.graph_llm import CallThread
    from chorus.voice.simulate import metrics_table, simulate_call

    assert isinstance(cfg, BotConfig)
    settings = load_settings()
    db = await open_database(settings)
    try:
        tenant_id = await ensure_tenant(db, tenant)
        checkpointer = ChorusCheckpointer(db.pool)
        await checkpointer.setup()
        try:
            graph = compile_bot(
                cfg, GraphDeps(db=db, registry=build_registry(), checkpointer=checkpointer, offline=settings.offline)
            )
            thread = CallThread(tenant_id=tenant_id, thread_id=str(uuid.uuid4()))
            sim = await simulate_call(cfg, graph, thread, caller_pcm=pcm, caller_rate=rate, max_seconds=max_seconds)
        except ChorusError as exc:
            _fail(exc.detail, 1)
        await checkpointer.aflush()
    finally:
        await db.close()
    write_wav(output_wav, sim.reply_pcm, sim.sample_rate)
    typer.echo(f"call thread {thread.thread_id}")
    typer.echo(sim.transcript())
    for row in metrics_table(sim):
        typer.echo(row)
    typer.echo(f"wrote {output_wav} ({len(sim.reply_pcm) / 2 / sim.sample_rate:.1f} s)")
    if not sim.finished:
        _fail(f"the call did not settle within {max_seconds:g} s (--max-seconds)", 1)


@voice_app.command()
def speak(
    text: Annotated[str, typer.Argument(help="What the caller says.")],
    output_wav: Annotated[Path, typer.Option("--out", help="The WAV file to write.")],
) -> None:
    """Write `text` as speech (espeak-ng, the offline TTS) into a WAV file: a caller for `simulate`."""
    from chorus.agents.errors import ChorusError
    from chorus.voice.audio_files import write_wav
    from chorus.voice.offline_tts import synthesize_pcm

    if not text.strip():
        _fail("give the words to speak")
    if not output_wav.parent.is_dir():
        _fail(f"--out {output_wav}: the folder {output_wav.parent} does not exist")
    try:
        pcm, rate = asyncio.run(synthesize_pcm(text))
    except ChorusError as exc:
        _fail(exc.detail, 1)
    write_wav(output_wav, pcm, rate)
    typer.echo(f"wrote {output_wav} ({len(pcm) / 2 / rate:.1f} s)")


LIVEKIT_ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")


def _run_worker(*, dev: bool, log_level: str) -> None:
    missing = [name for name in LIVEKIT_ENV if not os.environ.get(name)]
    if missing:
        _fail(
            f"set {', '.join(missing)}: the worker connects to your LiveKit server "
            "(e.g. LIVEKIT_URL=wss://your-project.livekit.cloud)"
        )
    from livekit.agents.cli import proto
    from livekit.agents.cli.cli import _run_worker as run_livekit_worker

    from chorus.voice.worker import create_server

    # What `python -m livekit.agents start` does with a server (the legacy `cli.run_app` is deprecated).
    run_livekit_worker(
        server=create_server(),
        args=proto.CliArgs(log_level=log_level, log_format="text" if dev else "json", dev=dev),
    )


LogLevel = Annotated[str, typer.Option(help="Log level: DEBUG, INFO, WARNING or ERROR.")]


@voice_app.command()
def start(log_level: LogLevel = "INFO") -> None:
    """Run the voice worker for production: it registers with LiveKit as agent `chorus-voicebot` (explicit
    dispatch) and answers each dispatched call with its voicebot (dispatch metadata or the dialed number)."""
    if log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        _fail(f"--log-level {log_level!r}: use DEBUG, INFO, WARNING or ERROR")
    _run_worker(dev=False, log_level=log_level.upper())


@voice_app.command()
def dev(log_level: LogLevel = "DEBUG") -> None:
    """Run the voice worker for development (readable logs, no idle process pool)."""
    if log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        _fail(f"--log-level {log_level!r}: use DEBUG, INFO, WARNING or ERROR")
    _run_worker(dev=True, log_level=log_level.upper())
