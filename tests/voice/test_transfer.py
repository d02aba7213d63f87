"""Transfers from inside a call: the model calls transfer_call, the bot says so, then the caller is handed over
(cold: SIP REFER; warm: hold, the person dialled and briefed, then connected) or, when that fails, hears an
apology and the conversation goes on. Escalation transfers to the first destination. LiveKit is a stand-in of its
Twirp API that decodes the real protobuf requests; the person reached is a fake who takes the call or not."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any, cast

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from livekit import rtc

from chorus.agents.storage.database import Database
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.voice.call_control import CALLBACK, GO_ON, HUMAN_IDENTITY
from chorus.voice.graph_llm import CallThread
from chorus.voice.warm_transfer import ASK, RoomBriefer, answer_of, briefing
from tests.fakes import FakePerson, livekit_client
from tests.voice.phone_calls import CALLER, ROOM, TRUNK, phone_call, tool_errors


async def test_cold_transfer_refers_the_caller_after_the_bot_said_so(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread
) -> None:
    async with phone_call(db, checkpointer, call) as phone:
        said = await phone.say("transfer me to front_desk")
        assert said == "Transferring you now."
        [(method, request)] = phone.livekit_calls()
        assert method == "TransferSIPParticipant"
        assert (request.room_name, request.participant_identity) == (ROOM, CALLER)
        assert request.transfer_to == "tel:+14155556789"
        facts = phone.voice.facts
        assert facts.final_outcome() == "transferred"
        assert facts.transfer is not None
        assert {k: facts.transfer[k] for k in ("destination", "phone", "mode", "result")} == {
            "destination": "front_desk",
            "phone": "+14155556789",
            "mode": "cold",
            "result": "transferred",
        }
        assert phone.closed()  # the bot left the call; the caller's leg is the destination's now


async def test_a_failed_cold_transfer_is_apologised_for_and_the_call_goes_on(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread
) -> None:
    async with phone_call(db, checkpointer, call) as phone:
        phone.livekit.state.errors["TransferSIPParticipant"] = (
            400,
            {
                "code": "failed_precondition",
                "msg": "refer rejected",
                "meta": {"sip_status_code": "603", "sip_status": "Decline"},
            },
        )
        await phone.say("transfer me to front_desk")
        facts = phone.voice.facts
        assert facts.transfer is not None and facts.transfer["result"] == "failed"
        assert "603" in facts.transfer["error"]
        assert facts.failure is not None and "front_desk" in facts.failure
        assert facts.outcome is None and not phone.closed()
        said = [m.content for m in await phone.messages() if isinstance(m, AIMessage) and m.content]
        assert said[-1] == f"I'm sorry, I couldn't transfer you to front desk just now. {GO_ON}"
        assert "How else can I help?" in await phone.say("what are your hours")  # the conversation continues
        assert phone.voice.facts.final_outcome() == "completed"


@pytest.mark.parametrize("wanted", ["the pharmacy", "+19005550000", "front_desk; billing"])
async def test_an_unknown_destination_is_refused_by_the_tool_and_never_dialled(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread, wanted: str
) -> None:
    async with phone_call(db, checkpointer, call) as phone:
        said = await phone.say(f"transfer me to {wanted}")
        assert phone.livekit_calls() == []
        [error] = tool_errors(await phone.messages())
        assert f"'{wanted}' is not a transfer destination" in error
        assert "front_desk, billing" in error  # the allowed ones, named for the model
        assert said.startswith("Sorry, I can't do that")
        assert phone.voice.facts.transfer is None and not phone.closed()


async def test_warm_transfer_holds_briefs_the_person_then_connects_them(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread
) -> None:
    async with phone_call(db, checkpointer, call) as phone:
        await phone.say("my invoice is wrong")
        await phone.say("transfer me to billing")
        [(dial, created), (move, moved)] = phone.livekit_calls()
        assert dial == "CreateSIPParticipant"
        assert created.sip_trunk_id == TRUNK and created.sip_call_to == "+14155550100"
        assert created.wait_until_answered and created.participant_identity == HUMAN_IDENTITY
        consult = created.room_name
        assert consult.startswith(f"{ROOM}-transfer-")
        [briefing] = phone.person.briefings
        assert briefing["room"] == consult
        assert "my invoice is wrong" in briefing["text"]  # the person hears what the call was about
        assert move == "MoveParticipant"
        assert (moved.room, moved.identity, moved.destination_room) == (consult, HUMAN_IDENTITY, ROOM)
        facts = phone.voice.facts
        assert facts.final_outcome() == "transferred"
        assert facts.transfer is not None and (facts.transfer["mode"], facts.transfer["result"]) == (
            "warm",
            "connected",
        )
        assert phone.closed()


async def test_warm_transfer_no_answer_comes_back_to_the_caller(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread
) -> None:
    async with phone_call(db, checkpointer, call) as phone:
        phone.livekit.state.errors["CreateSIPParticipant"] = (
            408,
            {
                "code": "deadline_exceeded",
                "msg": "no answer",
                "meta": {"sip_status_code": "480", "sip_status": "Temporarily Unavailable"},
            },
        )
        await phone.say("transfer me to billing")
        [(dial, created), (drop, dropped)] = phone.livekit_calls()
        assert (dial, drop) == ("CreateSIPParticipant", "DeleteRoom")
        assert dropped.room == created.room_name != ROOM  # the consultation room, never the caller's
        assert phone.person.briefings == []
        facts = phone.voice.facts
        assert facts.transfer is not None and facts.transfer["result"] == "no_answer"
        assert "480" in facts.transfer["error"]
        said = [m.content for m in await phone.messages() if isinstance(m, AIMessage) and m.content]
        assert said[-1] == f"I'm sorry, billing couldn't take your call right now. {GO_ON}"
        assert not phone.closed() and facts.outcome is None
        assert "How else can I help?" in await phone.say("ok then")


async def test_warm_transfer_declined_by_the_person_comes_back_to_the_caller(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread
) -> None:
    async with phone_call(db, checkpointer, call, person=FakePerson(takes_call=False)) as phone:
        await phone.say("transfer me to billing")
        methods = [m for m, _ in phone.livekit_calls()]
        assert methods == ["CreateSIPParticipant", "DeleteRoom"]  # never moved into the caller's room
        assert len(phone.person.briefings) == 1
        facts = phone.voice.facts
        assert facts.transfer is not None and facts.transfer["result"] == "declined"
        assert not phone.closed() and facts.final_outcome() == "completed"


async def test_escalation_transfers_to_the_first_destination(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread
) -> None:
    async with phone_call(db, checkpointer, call) as phone:
        said = await phone.say("I need to talk to a real person")
        assert "transferring you" in said.lower()  # the configured handoff, spoken before the transfer
        [(method, request)] = phone.livekit_calls()
        assert method == "TransferSIPParticipant" and request.transfer_to == "tel:+14155556789"
        facts = phone.voice.facts
        assert facts.final_outcome() == "escalated"
        assert facts.transfer is not None and facts.transfer["result"] == "transferred"
        assert facts.transfer["reason"] == "customer asked for a human"


async def test_escalation_without_a_destination_promises_a_call_back(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread
) -> None:
    async with phone_call(db, checkpointer, call, call_transfer={"enabled": False}) as phone:
        await phone.say("I need to talk to a real person")
        assert phone.livekit_calls() == []
        said = [m.content for m in await phone.messages() if isinstance(m, AIMessage) and m.content]
        assert said[-1] == CALLBACK
        assert phone.voice.facts.final_outcome() == "escalated" and phone.voice.facts.transfer is None
        assert not phone.closed()


async def test_transfer_call_is_offered_only_with_call_transfer_enabled(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread
) -> None:
    async with phone_call(db, checkpointer, call, call_transfer={"enabled": False}) as phone:
        await phone.say("transfer me to front_desk")
        [error] = tool_errors(await phone.messages())
        assert "unknown tool 'transfer_call'" in error
        assert phone.livekit_calls() == []
    results = [m for m in await phone.messages() if isinstance(m, ToolMessage)]
    assert results and results[0].name == "transfer_call"


class UnreachableRoom(FakePerson):
    async def brief(self, *, room: str, identity: str, text: str) -> bool:
        raise ConnectionError("could not join the consultation room")


async def test_a_briefing_that_fails_drops_the_person_and_comes_back_to_the_caller(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread
) -> None:
    async with phone_call(db, checkpointer, call, person=UnreachableRoom()) as phone:
        await phone.say("transfer me to billing")
        (_, created), (drop, dropped) = phone.livekit_calls()
        assert drop == "DeleteRoom" and dropped.room == created.room_name
        facts = phone.voice.facts
        assert facts.transfer is not None and facts.transfer["result"] == "failed"
        assert "could not join the consultation room" in facts.transfer["error"]
        said = [m.content for m in await phone.messages() if isinstance(m, AIMessage) and m.content]
        assert said[-1] == f"I'm sorry, I couldn't transfer you to billing just now. {GO_ON}"
        assert not phone.closed()


def test_the_briefing_tells_the_person_why_and_what_the_caller_said() -> None:
    messages = [
        AIMessage("Thank you for calling."),
        HumanMessage("my invoice is wrong"),
        AIMessage("I can help with that."),
        HumanMessage("transfer me to billing"),
    ]
    text = briefing(messages, bot="HealthCare Plus Scheduler", destination="billing_team", reason="caller asked")
    assert text.startswith("Hello, this is the HealthCare Plus Scheduler assistant with a caller for billing team.")
    assert 'The caller said: "my invoice is wrong" ... "transfer me to billing".' in text
    assert 'I last told them: "I can help with that."' in text and text.endswith(ASK)


@pytest.mark.parametrize(
    ("said", "verdict"),
    [
        ("Yes, put them through.", True),
        ("okay", True),
        ("No, I'm busy right now.", False),
        ("Sorry, I can't take it", False),
        ("Hello? Who is this?", None),
    ],
)
def test_the_persons_answer_decides(said: str, verdict: bool | None) -> None:
    assert answer_of(said) is verdict


async def test_the_worker_gives_the_call_its_line_dtmf_and_background(
    db: Database,
    checkpointer: ChorusCheckpointer,
    call: CallThread,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("LIVEKIT_SIP_OUTBOUND_TRUNK", "ST_from_env")
    async with phone_call(db, checkpointer, call) as phone:
        assert phone.voice.phone is not None
        room = rtc.Room()  # never connected: publishing the background track fails, the call goes on
        job = SimpleNamespace(api=livekit_client("http://127.0.0.1:9"), room=room)
        caller = SimpleNamespace(identity="sip_+15550002222")
        with caplog.at_level(logging.ERROR):
            await phone.voice.phone.attach(cast(Any, job), cast(Any, caller))
        line = phone.control.line
        assert line is not None
        assert (line.room, line.caller_identity, line.outbound_trunk_id) == ("", "sip_+15550002222", "ST_from_env")
        assert isinstance(phone.control.briefer, RoomBriefer)
        assert phone.voice.phone.player is None and "background audio did not start" in caplog.text
        room.emit("sip_dtmf_received", rtc.SipDTMF(code=11, digit="#"))
        assert phone.voice.facts.dtmf == ["#"]
        await phone.voice.phone.dtmf.replies[0]
        await job.api.aclose()


async def test_livekit_unreachable_mid_transfer_is_apologised_for_and_the_call_goes_on(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread
) -> None:
    async with phone_call(db, checkpointer, call) as phone:
        line = phone.control.line
        assert line is not None
        dead = livekit_client("http://127.0.0.1:9")  # nothing listens there
        line.lk = dead
        try:
            await phone.say("transfer me to front_desk")
        finally:
            await dead.aclose()
        facts = phone.voice.facts
        assert facts.transfer is not None and facts.transfer["result"] == "failed"
        assert "Cannot connect" in facts.transfer["error"]
        assert not phone.closed() and facts.outcome is None
        assert "How else can I help?" in await phone.say("are you there")
