"""The LiveKit side of one call's phone features, through livekit-api (LiveKit's Twirp API): hang up (the room
deleted, so the SIP leg ends), cold transfer (SIP REFER), and the legs of a warm transfer (dial a person into a
consultation room, move them into the caller's room, drop the consultation room). The one seam to the LiveKit
server for them; tests point it at a stand-in of the Twirp API."""

from __future__ import annotations

from dataclasses import dataclass

from livekit import api
from livekit.protocol import sip

# How long a person's phone may ring before a warm transfer gives up (LiveKit's default is longer).
RINGING_TIMEOUT_S = 30.0


def tel_uri(phone: str) -> str:
    """A config phone number (`+14155556789` or `14155556789`) as the SIP REFER target LiveKit expects."""
    return f"tel:{phone if phone.startswith('+') else '+' + phone}"


class TransferFailed(RuntimeError):
    """LiveKit answered a transfer request with a failed transfer."""


@dataclass
class LiveKitLine:
    lk: api.LiveKitAPI
    room: str  # the caller's room
    caller_identity: str  # the caller's SIP participant
    outbound_trunk_id: str | None = None  # the SIP outbound trunk a warm transfer dials through

    async def hang_up(self) -> None:
        await self.lk.room.delete_room(api.DeleteRoomRequest(room=self.room))

    async def transfer(self, phone: str) -> None:
        """Cold transfer: the caller's SIP leg is referred to `phone`. An error, or a response saying the transfer
        failed, raises; an ongoing transfer (what servers without transfer status answer) is handed over."""
        response = await self.lk.sip.transfer_sip_participant(
            api.TransferSIPParticipantRequest(
                room_name=self.room,
                participant_identity=self.caller_identity,
                transfer_to=tel_uri(phone),
                play_dialtone=False,
            )
        )
        if response.status == sip.SIPTransferStatus.STS_TRANSFER_FAILED:
            reason = sip.SIPTransferReason.Name(response.reason)
            raise TransferFailed(f"the transfer failed ({reason}, SIP {response.sip_status.code or 'no status'})")

    async def dial(self, *, phone: str, room: str, identity: str, ringing_timeout: float = RINGING_TIMEOUT_S) -> None:
        """Call `phone` into `room` as `identity`; returns once the person answered, raises if they did not."""
        if not self.outbound_trunk_id:
            raise RuntimeError("no SIP outbound trunk to dial through (LIVEKIT_SIP_OUTBOUND_TRUNK is not set)")
        request = api.CreateSIPParticipantRequest(
            sip_trunk_id=self.outbound_trunk_id,
            sip_call_to=tel_uri(phone).removeprefix("tel:"),
            room_name=room,
            participant_identity=identity,
            participant_name="Transfer target",
            wait_until_answered=True,
        )
        request.ringing_timeout.FromNanoseconds(int(ringing_timeout * 1e9))
        await self.lk.sip.create_sip_participant(request, timeout=ringing_timeout + 10)

    async def connect(self, *, room: str, identity: str) -> None:
        """Move the person from the consultation room into the caller's room: caller and person now talk."""
        await self.lk.room.move_participant(
            api.MoveParticipantRequest(room=room, identity=identity, destination_room=self.room)
        )

    async def drop(self, room: str) -> None:
        """End a consultation room (and the person's leg in it)."""
        await self.lk.room.delete_room(api.DeleteRoomRequest(room=room))
