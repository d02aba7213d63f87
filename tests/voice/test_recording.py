"""Call recording: with sip_config.call_recording, an audio-only room composite egress through the real
livekit-api client (against a stand-in of LiveKit's Twirp Egress API) writing to the configured S3 storage,
recorded on the call; no storage, a misconfigured one or an egress error leave the call unrecorded with the
reason, never a failed call; the retention sweep deletes expired recordings from S3 (moto's S3 server) and
clears them on their records, and keeps what it could not delete for the next sweep."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from livekit import api
from minio import Minio
from minio.error import S3Error
from moto.server import ThreadedMotoServer

from chorus.agents.configs.models import BotConfig
from chorus.agents.storage.database import Database
from chorus.voice.call_facts import CallFacts
from chorus.voice.call_records import CallRecords
from chorus.voice.recording import (
    DEFAULT_RETENTION_DAYS,
    RecordingStorage,
    S3Recordings,
    record_call,
    start_recording,
    sweep_expired_recordings,
)
from tests.conftest import Tenant, example, free_port
from tests.fakes import EgressStandIn, serve

BUCKET = "call-recordings"


def recorded_bot(**sip: Any) -> BotConfig:
    raw = example("healthcare_scheduler")
    raw["sip_config"] |= {"call_recording": True, **sip}
    return BotConfig.model_validate(raw)


@pytest.fixture
async def egress() -> AsyncIterator[tuple[EgressStandIn, api.LiveKitAPI]]:
    stand_in = EgressStandIn()
    async with serve(stand_in.app) as base:
        client = api.LiveKitAPI(url=base, api_key=stand_in.api_key, api_secret=stand_in.api_secret)
        yield stand_in, client
        await client.aclose()


@pytest.fixture(scope="module")
def s3() -> Iterator[RecordingStorage]:
    """moto's S3 server on loopback, with the recordings' bucket."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    storage = RecordingStorage(
        BUCKET, "test-access", "test-secret", endpoint=f"http://{host}:{port}", region="us-east-1"
    )
    client = minio(storage)
    client.make_bucket(BUCKET)
    yield storage
    server.stop()


def minio(storage: RecordingStorage) -> Minio:
    endpoint = (storage.endpoint or "").removeprefix("http://")
    return Minio(
        endpoint, access_key=storage.access_key, secret_key=storage.secret_key, secure=False, region="us-east-1"
    )


def call_facts(tenant_id: str = "tenant-1") -> CallFacts:
    return CallFacts(call_id=str(uuid.uuid4()), tenant_id=tenant_id, room="call-abc")


async def test_a_recorded_call_starts_an_audio_only_egress_to_the_bucket(
    egress: tuple[EgressStandIn, api.LiveKitAPI], s3: RecordingStorage
) -> None:
    stand_in, client = egress
    facts = call_facts()
    await start_recording(
        client.egress, room="call-abc", facts=facts, cfg=recorded_bot(recording_retention_days=7), storage=s3
    )
    assert stand_in.refused == [] and len(stand_in.requests) == 1
    sent = stand_in.requests[0]
    assert sent.room_name == "call-abc" and sent.audio_only
    (output,) = sent.file_outputs
    assert output.file_type == api.EncodedFileType.OGG
    assert output.filepath.startswith("recordings/tenant-1/") and output.filepath.endswith(f"{facts.call_id}.ogg")
    assert (output.s3.bucket, output.s3.endpoint, output.s3.force_path_style) == (BUCKET, s3.endpoint, True)
    assert (output.s3.access_key, output.s3.secret, output.s3.region) == ("test-access", "test-secret", "us-east-1")
    assert facts.recording == {
        "egress_id": "EG_000001",
        "location": f"s3://{BUCKET}/{output.filepath}",
        "delete_after": (facts.started_at + timedelta(days=7)).isoformat(),
    }
    default = call_facts()
    await start_recording(
        client.egress, room="r", facts=default, cfg=recorded_bot(recording_retention_days=None), storage=s3
    )
    assert default.recording is not None
    assert (
        default.recording["delete_after"] == (default.started_at + timedelta(days=DEFAULT_RETENTION_DAYS)).isoformat()
    )


async def test_a_call_without_call_recording_is_not_recorded(
    egress: tuple[EgressStandIn, api.LiveKitAPI], s3: RecordingStorage
) -> None:
    stand_in, client = egress
    facts = call_facts()
    await start_recording(client.egress, room="r", facts=facts, cfg=recorded_bot(call_recording=False), storage=s3)
    assert stand_in.requests == [] and facts.recording is None


async def test_no_storage_refuses_the_recording_with_a_warning(
    egress: tuple[EgressStandIn, api.LiveKitAPI], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in, client = egress
    for name in ("BUCKET", "ACCESS_KEY", "SECRET_KEY", "ENDPOINT"):
        monkeypatch.delenv(f"CHORUS_RECORDING_S3_{name}", raising=False)
    facts = call_facts()
    with caplog.at_level(logging.WARNING):
        await record_call(client.egress, room="r", facts=facts, cfg=recorded_bot())
    assert stand_in.requests == []
    assert facts.recording is not None and "no recording storage is configured" in facts.recording["error"]
    assert "CHORUS_RECORDING_S3_BUCKET" in facts.recording["error"]
    assert any("not recorded" in r.getMessage() for r in caplog.records)
    # A bucket without its keys is a misconfiguration that says what to set; the call still goes on.
    monkeypatch.setenv("CHORUS_RECORDING_S3_BUCKET", BUCKET)
    facts = call_facts()
    await record_call(client.egress, room="r", facts=facts, cfg=recorded_bot())
    assert facts.recording is not None and "CHORUS_RECORDING_S3_ACCESS_KEY" in facts.recording["error"]


@pytest.mark.parametrize("status", [403, 503])
async def test_an_egress_error_leaves_the_call_unrecorded_with_the_reason(
    egress: tuple[EgressStandIn, api.LiveKitAPI], s3: RecordingStorage, status: int
) -> None:
    stand_in, client = egress
    stand_in.fail_with = status
    facts = call_facts()
    await start_recording(client.egress, room="r", facts=facts, cfg=recorded_bot(), storage=s3)  # does not raise
    assert facts.recording is not None and facts.recording["error"].startswith("the egress did not start")
    assert "egress is down" in facts.recording["error"]


async def test_the_egress_checks_the_api_secret(s3: RecordingStorage) -> None:
    stand_in = EgressStandIn()
    async with serve(stand_in.app) as base:
        client = api.LiveKitAPI(url=base, api_key=stand_in.api_key, api_secret="not-the-secret-0123456789abcdefghij")
        facts = call_facts()
        await start_recording(client.egress, room="r", facts=facts, cfg=recorded_bot(), storage=s3)
        await client.aclose()
    assert stand_in.refused and facts.recording is not None and "error" in facts.recording


async def stored_call(db: Database, tenant: Tenant, storage: RecordingStorage, *, delete_after: datetime) -> str:
    """A call whose recording is in the bucket, as its record says."""
    facts = CallFacts(call_id=str(uuid.uuid4()), tenant_id=tenant.tenant_id, ended_at=datetime.now(UTC))
    key = f"recordings/{tenant.tenant_id}/{facts.call_id}.ogg"
    minio(storage).put_object(BUCKET, key, io.BytesIO(b"OggS audio"), length=10)
    facts.recording = {
        "egress_id": "EG_1",
        "location": f"s3://{BUCKET}/{key}",
        "delete_after": delete_after.isoformat(),
    }
    await CallRecords(db).save(facts, [])
    return facts.call_id


def in_bucket(storage: RecordingStorage, call_id: str, tenant: Tenant) -> bool:
    try:
        minio(storage).stat_object(BUCKET, f"recordings/{tenant.tenant_id}/{call_id}.ogg")
    except S3Error:
        return False
    return True


async def test_the_sweep_deletes_expired_recordings_and_clears_them(
    db: Database, tenant: Tenant, s3: RecordingStorage
) -> None:
    now = datetime.now(UTC)
    expired = await stored_call(db, tenant, s3, delete_after=now - timedelta(minutes=1))
    kept = await stored_call(db, tenant, s3, delete_after=now + timedelta(days=1))
    assert await sweep_expired_recordings(db, S3Recordings(s3)) >= 1
    assert not in_bucket(s3, expired, tenant) and in_bucket(s3, kept, tenant)
    gone = await CallRecords(db).get(tenant.tenant_id, expired)
    recording = gone["facts"]["recording"]
    assert recording["location"] is None and recording["egress_id"] == "EG_1" and recording["deleted_at"]
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT call_id::text, recording_delete_after FROM calls WHERE call_id = ANY(%s::uuid[])",
            ([expired, kept],),
        )
        after = {r["call_id"]: r["recording_delete_after"] for r in await cur.fetchall()}
    assert after[expired] is None and after[kept] is not None
    assert (await CallRecords(db).get(tenant.tenant_id, kept))["facts"]["recording"]["location"].startswith("s3://")
    assert await sweep_expired_recordings(db, S3Recordings(s3)) == 0  # nothing left to do


async def test_what_the_sweep_cannot_delete_is_kept_for_the_next_one(
    db: Database, tenant: Tenant, s3: RecordingStorage
) -> None:
    expired = await stored_call(db, tenant, s3, delete_after=datetime.now(UTC) - timedelta(minutes=1))
    wrong_keys = RecordingStorage(
        BUCKET, "test-access", "test-secret", endpoint="http://127.0.0.1:9", region="us-east-1"
    )
    assert await sweep_expired_recordings(db, S3Recordings(wrong_keys)) == 0  # the store is unreachable
    assert await sweep_expired_recordings(db, None) == 0  # no store configured any more: a warning, nothing lost
    assert in_bucket(s3, expired, tenant)
    assert (await CallRecords(db).get(tenant.tenant_id, expired))["facts"]["recording"]["location"]
    assert await sweep_expired_recordings(db, S3Recordings(s3)) >= 1
    assert not in_bucket(s3, expired, tenant)


async def test_a_recording_outside_the_bucket_is_never_deleted(s3: RecordingStorage) -> None:
    with pytest.raises(ValueError, match="not in the recording bucket"):
        await S3Recordings(s3).delete("s3://someone-elses-bucket/secret.ogg")
