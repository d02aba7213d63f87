"""Call recording (sip_config.call_recording): an audio-only room composite egress started through LiveKit's
Egress API when the call starts, writing an OGG file to S3-compatible storage that the operator configures
(CHORUS_RECORDING_S3_*); and the retention: a periodic sweep deletes each recording from storage once its
`delete_after` (call start + recording_retention_days) has passed, and clears it on the call record.

No storage configured: the call is not recorded (LiveKit would have nowhere to write), a warning is logged and
the call's facts say why. The file is written by LiveKit's egress service, not by Chorus; Chorus only ever
deletes it (`RecordingStore`: S3 through the MinIO client, one small seam tests replace with a local S3)."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from psycopg.types.json import Jsonb

from chorus.agents.configs.models import BotConfig
from chorus.agents.errors import ServerMisconfigured
from chorus.agents.storage.database import Database
from chorus.voice.call_facts import CallFacts

if TYPE_CHECKING:  # livekit.api is imported where it is used: the server (retention sweep) never needs it
    from livekit import api

log = logging.getLogger(__name__)

ENV = "CHORUS_RECORDING_S3_"
DEFAULT_RETENTION_DAYS = 30  # when the config's sip_config.recording_retention_days is not set
EGRESS_TIMEOUT_S = 10.0
SWEEP_BATCH = 100


@dataclass(frozen=True)
class RecordingStorage:
    """Where recordings go: an S3 bucket (AWS, or any S3-compatible store through `endpoint`)."""

    bucket: str
    access_key: str
    secret_key: str = field(repr=False)
    endpoint: str | None = None  # https://minio.example.com; None: AWS S3
    region: str | None = None
    prefix: str = "recordings/"

    @classmethod
    def from_env(cls) -> RecordingStorage | None:
        """CHORUS_RECORDING_S3_BUCKET, _ACCESS_KEY, _SECRET_KEY, and optionally _ENDPOINT, _REGION, _PREFIX;
        None when no bucket is set (recording off)."""
        bucket = os.environ.get(ENV + "BUCKET", "").strip()
        if not bucket:
            return None
        access, secret = os.environ.get(ENV + "ACCESS_KEY", ""), os.environ.get(ENV + "SECRET_KEY", "")
        if not access or not secret:
            raise ServerMisconfigured(
                f"{ENV}BUCKET is set but {ENV}ACCESS_KEY or {ENV}SECRET_KEY is not: set both (the egress writes "
                "recordings with them and the retention sweep deletes them)"
            )
        endpoint = os.environ.get(ENV + "ENDPOINT", "").strip() or None
        if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
            raise ServerMisconfigured(f"{ENV}ENDPOINT must be an http(s) URL, e.g. https://s3.example.com")
        prefix = os.environ.get(ENV + "PREFIX", "recordings/").strip().lstrip("/")
        region = os.environ.get(ENV + "REGION", "").strip() or None
        return cls(
            bucket, access, secret, endpoint, region, prefix if prefix.endswith("/") or not prefix else prefix + "/"
        )

    def s3_upload(self) -> api.S3Upload:
        from livekit import api

        return api.S3Upload(
            access_key=self.access_key,
            secret=self.secret_key,
            region=self.region or "",
            endpoint=self.endpoint or "",
            bucket=self.bucket,
            force_path_style=self.endpoint is not None,  # S3-compatible stores rarely serve bucket subdomains
        )

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def recording_key(storage: RecordingStorage, facts: CallFacts) -> str:
    return f"{storage.prefix}{facts.tenant_id}/{facts.started_at:%Y/%m/%d}/{facts.call_id}.ogg"


def retention_days(cfg: BotConfig) -> int:
    days = cfg.sip_config.recording_retention_days if cfg.sip_config else None
    return DEFAULT_RETENTION_DAYS if days is None else days


class Egress(Protocol):
    async def start_room_composite_egress(self, start: api.RoomCompositeEgressRequest) -> api.EgressInfo: ...


async def start_recording(
    egress: Egress, *, room: str, facts: CallFacts, cfg: BotConfig, storage: RecordingStorage | None
) -> None:
    """Start the call's recording if its config asks for one; the outcome goes in `facts.recording` (egress
    id, location, delete_after) or, when it cannot start, `{"error": …}`. Never raises: the call goes on."""
    if cfg.sip_config is None or not cfg.sip_config.call_recording:
        return
    if storage is None:
        reason = (
            "sip_config.call_recording is on but no recording storage is configured: the operator sets "
            f"{ENV}BUCKET, {ENV}ACCESS_KEY and {ENV}SECRET_KEY (docs/operations.md)"
        )
        log.warning("call %s not recorded: %s", facts.call_id, reason)
        facts.recording = {"error": reason}
        return
    from livekit import api

    key = recording_key(storage, facts)
    request = api.RoomCompositeEgressRequest(
        room_name=room,
        audio_only=True,
        file_outputs=[api.EncodedFileOutput(file_type=api.EncodedFileType.OGG, filepath=key, s3=storage.s3_upload())],
    )
    try:
        async with asyncio.timeout(EGRESS_TIMEOUT_S):
            info = await egress.start_room_composite_egress(request)
    except Exception as exc:  # LiveKit refused or did not answer: the call goes on unrecorded
        reason = f"the egress did not start: {type(exc).__name__}: {exc}"[:500]
        log.warning("call %s not recorded: %s", facts.call_id, reason)
        facts.recording = {"error": reason}
        return
    delete_after = facts.started_at + timedelta(days=retention_days(cfg))
    facts.recording = {
        "egress_id": info.egress_id,
        "location": storage.location(key),
        "delete_after": delete_after.isoformat(),
    }


async def record_call(egress: Egress, *, room: str, facts: CallFacts, cfg: BotConfig) -> None:
    """`start_recording` with the storage configured in the environment (the voice worker's call)."""
    try:
        storage = RecordingStorage.from_env()
    except ServerMisconfigured as exc:
        log.warning("call %s not recorded: %s", facts.call_id, exc.detail)
        if cfg.sip_config is not None and cfg.sip_config.call_recording:
            facts.recording = {"error": exc.detail}
        return
    await start_recording(egress, room=room, facts=facts, cfg=cfg, storage=storage)


# -- retention ------------------------------------------------------------------------------------------


class RecordingStore(Protocol):
    async def delete(self, location: str) -> None:
        """Delete the recording at `location` (s3://bucket/key); a recording already gone is not an error."""
        ...


class S3Recordings:
    """Deletes recordings from the configured bucket (MinIO's S3 client, run off the event loop)."""

    def __init__(self, storage: RecordingStorage) -> None:
        from minio import Minio

        endpoint = urlsplit(storage.endpoint) if storage.endpoint else None
        self.storage = storage
        self._client = Minio(
            endpoint.netloc if endpoint else "s3.amazonaws.com",
            access_key=storage.access_key,
            secret_key=storage.secret_key,
            region=storage.region,
            secure=endpoint.scheme == "https" if endpoint else True,
        )

    async def delete(self, location: str) -> None:
        parts = urlsplit(location)
        if parts.scheme != "s3" or parts.netloc != self.storage.bucket:
            raise ValueError(f"{location!r} is not in the recording bucket {self.storage.bucket!r}")
        # S3's DeleteObject succeeds for a key that is already gone: a sweep repeated by two processes is fine.
        await asyncio.to_thread(self._client.remove_object, self.storage.bucket, parts.path.lstrip("/"))


_store: RecordingStore | None = None


def configured_store() -> RecordingStore | None:
    """The store of the recording storage configured in the environment (made once per process)."""
    global _store
    if _store is None:
        storage = RecordingStorage.from_env()
        _store = S3Recordings(storage) if storage is not None else None
    return _store


async def sweep_expired_recordings(db: Database, store: RecordingStore | None, *, limit: int = SWEEP_BATCH) -> int:
    """Delete the recordings whose retention has passed, and clear them on their records (the record keeps
    egress_id and when the recording was deleted). Returns how many went. Several processes may sweep at once:
    deleting twice is harmless, and each record is cleared once."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT call_id::text, facts->'recording' AS recording FROM calls"
            " WHERE recording_delete_after IS NOT NULL AND recording_delete_after <= now()"
            " ORDER BY recording_delete_after LIMIT %s",
            (limit,),
        )
        due = await cur.fetchall()
    if due and store is None:
        log.warning("%d recording(s) are past their retention but no recording storage is configured", len(due))
        return 0
    deleted = 0
    for row in due:
        recording: dict[str, Any] = row["recording"] or {}
        location = recording.get("location")
        if location:
            assert store is not None
            try:
                await store.delete(str(location))
            except Exception as exc:  # tried again at the next sweep
                log.warning("could not delete the recording of call %s: %s", row["call_id"], exc)
                continue
        cleared = {**recording, "location": None, "deleted_at": datetime.now(UTC).isoformat()}
        async with db.connection() as conn:
            done = await conn.execute(
                "UPDATE calls SET recording_delete_after = NULL, facts = jsonb_set(facts, '{recording}', %s)"
                " WHERE call_id = %s AND recording_delete_after IS NOT NULL",
                (Jsonb(cleared), row["call_id"]),
            )
            deleted += done.rowcount
    if deleted:
        log.info("deleted %d recording(s) past their retention", deleted)
    return deleted
