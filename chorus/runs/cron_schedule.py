"""When a cron fires: its schedule (five-field cron syntax, read by `croniter`) in its time zone, and the ids
that make each occurrence happen once however many workers see it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from chorus.agents.errors import InvalidInput

_OCCURRENCES = uuid.UUID("6f1d2d0e-3c41-4a6b-9a55-0c4e7b1f9e21")  # namespace of occurrence ids


def check_schedule(schedule: str, timezone: str) -> None:
    """A clear 422 for a schedule or time zone that cannot be used."""
    if len(schedule.split()) != 5:
        raise InvalidInput(
            f"schedule '{schedule[:80]}' is not a five-field cron expression (minute hour day month weekday), "
            "e.g. '0 9 * * 1-5' for 09:00 on weekdays",
            errors=[{"path": "$.schedule", "message": "expected 5 fields"}],
        )
    try:
        croniter(schedule).get_next(datetime)  # also refuses a date that never comes (e.g. 31 February)
    except (CroniterBadCronError, CroniterBadDateError, ValueError, KeyError) as exc:
        raise InvalidInput(
            f"schedule '{schedule[:80]}' is not a valid cron expression: {exc}",
            errors=[{"path": "$.schedule", "message": "invalid cron expression"}],
        ) from None
    _zone(timezone)


def _zone(timezone: str) -> ZoneInfo:
    try:
        if len(timezone) > 64:
            raise ValueError(timezone)
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(
            f"timezone '{timezone[:64]}' is not an IANA time zone (e.g. 'Europe/Berlin', 'UTC')",
            errors=[{"path": "$.timezone", "message": "unknown time zone"}],
        ) from None


def next_fire(schedule: str, timezone: str, *, after: datetime, end_time: datetime | None) -> datetime | None:
    """The first occurrence strictly after `after` (UTC), or None past `end_time`."""
    local = after.astimezone(_zone(timezone))
    try:
        at: datetime = croniter(schedule, local).get_next(datetime)
    except CroniterBadDateError:
        return None  # no date left (checked when the cron was made; a guard for older rows)
    at = at.astimezone(UTC)
    return None if end_time is not None and at > end_time else at


def occurrence_id(cron_id: str, at: datetime, what: str) -> str:
    """The same id for the same occurrence (its queue job, its run, its new thread) in every process."""
    return str(uuid.uuid5(_OCCURRENCES, f"{cron_id}:{at.astimezone(UTC).isoformat()}:{what}"))
