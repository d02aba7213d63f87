"""Built-in scheduling tools of the example voicebot, against the tenant's demo calendar in Postgres."""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from psycopg.errors import UniqueViolation
from pydantic import Field

from chorus.agents.errors import ToolError
from chorus.agents.tools.registry import ToolContext, ToolRegistry

_OPENING_HOURS = [time(h, m) for h in range(9, 17) for m in (0, 30) if h != 12]


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ToolError(f"'{value}' is not a date; use YYYY-MM-DD") from None


async def check_appointment_availability(
    ctx: ToolContext, date: Annotated[str, Field(description="Day to check, YYYY-MM-DD")]
) -> dict[str, Any]:
    day = _parse_date(date)
    if day.weekday() >= 5:
        return {"date": day.isoformat(), "available_slots": [], "note": "the clinic is closed at weekends"}
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            "SELECT starts_at FROM demo_appointments WHERE tenant_id = %s AND starts_at >= %s AND starts_at < %s",
            (ctx.tenant_id, datetime.combine(day, time()), datetime.combine(day + timedelta(days=1), time())),
        )
        booked = {row["starts_at"].time() for row in await cur.fetchall()}
    slots = [t.strftime("%H:%M") for t in _OPENING_HOURS if t not in booked]
    return {"date": day.isoformat(), "available_slots": slots}


async def book_appointment(
    ctx: ToolContext,
    patient_name: Annotated[str, Field(description="Full name of the patient", min_length=2)],
    date: Annotated[str, Field(description="Day, YYYY-MM-DD")],
    time: Annotated[str, Field(description="Start time, HH:MM (24h)", pattern=r"^\d{1,2}:\d{2}$")],
    reason: Annotated[str, Field(description="Reason for the visit")] = "consultation",
) -> dict[str, Any]:
    day = _parse_date(date)
    hour, minute = (int(x) for x in time.split(":"))
    starts = datetime.combine(day, datetime.min.time()).replace(hour=hour % 24, minute=minute % 60)
    if starts.time() not in _OPENING_HOURS or day.weekday() >= 5:
        raise ToolError(f"{date} {time} is outside opening hours; check availability first")
    appointment_id = "APT-" + secrets.token_hex(3).upper()
    try:
        async with ctx.db.connection() as conn:
            await conn.execute(
                "INSERT INTO demo_appointments (appointment_id, tenant_id, patient_name, starts_at, reason)"
                " VALUES (%s, %s, %s, %s, %s)",
                (appointment_id, ctx.tenant_id, patient_name, starts, reason),
            )
    except UniqueViolation:
        raise ToolError(f"{date} {time} is already taken; offer another slot") from None
    return {
        "appointment_id": appointment_id,
        "patient_name": patient_name,
        "date": day.isoformat(),
        "time": starts.strftime("%H:%M"),
        "status": "booked",
    }


def register(registry: ToolRegistry) -> None:
    registry.tool(
        "check_appointment_availability", "List the free appointment slots on a given day.", side_effects=False
    )(check_appointment_availability)
    registry.tool("book_appointment", "Book an appointment for a patient at a free slot.", side_effects=True)(
        book_appointment
    )
