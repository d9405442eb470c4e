"""A small, strict SMPP 3.4 PDU codec for the carrier SMSC (the server side).

smpplib's PDU classes are written for a client: parsing trusts the input (a string without its NUL runs into
the next field, an integer TLV is read by the declared size rather than its length, a known TLV that the
command does not list raises ``KeyError``) and it has no server. A server must answer garbage with a
``generic_nack`` and keep going, so it gets this codec: every field is bounds-checked and any problem is a
`MalformedPduError` carrying the status to nack with.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from SmppLibrary.codec import ESME_RINVCMDID, ESME_RINVCMDLEN

COMMANDS: dict[str, int] = {
    "generic_nack": 0x80000000,
    "bind_receiver": 0x00000001,
    "bind_receiver_resp": 0x80000001,
    "bind_transmitter": 0x00000002,
    "bind_transmitter_resp": 0x80000002,
    "query_sm": 0x00000003,
    "query_sm_resp": 0x80000003,
    "submit_sm": 0x00000004,
    "submit_sm_resp": 0x80000004,
    "deliver_sm": 0x00000005,
    "deliver_sm_resp": 0x80000005,
    "unbind": 0x00000006,
    "unbind_resp": 0x80000006,
    "replace_sm": 0x00000007,
    "replace_sm_resp": 0x80000007,
    "cancel_sm": 0x00000008,
    "cancel_sm_resp": 0x80000008,
    "bind_transceiver": 0x00000009,
    "bind_transceiver_resp": 0x80000009,
    "outbind": 0x0000000B,
    "enquire_link": 0x00000015,
    "enquire_link_resp": 0x80000015,
    "submit_multi": 0x00000021,
    "submit_multi_resp": 0x80000021,
    "alert_notification": 0x00000102,
    "data_sm": 0x00000103,
    "data_sm_resp": 0x80000103,
}
COMMAND_NAMES = {code: name for name, code in COMMANDS.items()}

ESME_RINVPARLEN = 0xC2
ESME_RINVOPTPARSTREAM = 0xC0

TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TLV_SC_INTERFACE_VERSION = 0x0210
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_NETWORK_ERROR_CODE = 0x0423

# (field, kind, max length incl. NUL for "cstr"); "octets" is short_message, sized by the field before it.
_BIND = [
    ("system_id", "cstr", 16),
    ("password", "cstr", 9),
    ("system_type", "cstr", 13),
    ("interface_version", "u8", 1),
    ("addr_ton", "u8", 1),
    ("addr_npi", "u8", 1),
    ("address_range", "cstr", 41),
]
_SM = [
    ("service_type", "cstr", 6),
    ("source_addr_ton", "u8", 1),
    ("source_addr_npi", "u8", 1),
    ("source_addr", "cstr", 21),
    ("dest_addr_ton", "u8", 1),
    ("dest_addr_npi", "u8", 1),
    ("destination_addr", "cstr", 21),
    ("esm_class", "u8", 1),
    ("protocol_id", "u8", 1),
    ("priority_flag", "u8", 1),
    ("schedule_delivery_time", "cstr", 17),
    ("validity_period", "cstr", 17),
    ("registered_delivery", "u8", 1),
    ("replace_if_present_flag", "u8", 1),
    ("data_coding", "u8", 1),
    ("sm_default_msg_id", "u8", 1),
    ("sm_length", "u8", 1),
    ("short_message", "octets", 254),
]
_DATA_SM = [
    ("service_type", "cstr", 6),
    ("source_addr_ton", "u8", 1),
    ("source_addr_npi", "u8", 1),
    ("source_addr", "cstr", 65),
    ("dest_addr_ton", "u8", 1),
    ("dest_addr_npi", "u8", 1),
    ("destination_addr", "cstr", 65),
    ("esm_class", "u8", 1),
    ("registered_delivery", "u8", 1),
    ("data_coding", "u8", 1),
]
_MESSAGE_ID = [("message_id", "cstr", 65)]
_SYSTEM_ID = [("system_id", "cstr", 16)]

LAYOUTS: dict[str, list[tuple[str, str, int]]] = {
    "bind_receiver": _BIND,
    "bind_transmitter": _BIND,
    "bind_transceiver": _BIND,
    "bind_receiver_resp": _SYSTEM_ID,
    "bind_transmitter_resp": _SYSTEM_ID,
    "bind_transceiver_resp": _SYSTEM_ID,
    "submit_sm": _SM,
    "deliver_sm": _SM,
    "data_sm": _DATA_SM,
    "submit_sm_resp": _MESSAGE_ID,
    "deliver_sm_resp": _MESSAGE_ID,
    "data_sm_resp": _MESSAGE_ID,
    "enquire_link": [],
    "enquire_link_resp": [],
    "unbind": [],
    "unbind_resp": [],
    "generic_nack": [],
}


class MalformedPduError(ValueError):
    """A PDU the codec cannot read; ``status`` is the generic_nack status to answer with."""

    def __init__(self, message: str, status: int, sequence: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.sequence = sequence


@dataclass
class Pdu:
    command_id: int
    status: int = 0
    sequence: int = 0
    fields: dict[str, Any] = field(default_factory=dict)
    tlvs: dict[int, bytes] = field(default_factory=dict)

    @property
    def command(self) -> str:
        return COMMAND_NAMES.get(self.command_id, f"0x{self.command_id:08X}")

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & 0x80000000)

    def tlv_int(self, tag: int) -> int | None:
        value = self.tlvs.get(tag)
        return int.from_bytes(value, "big") if value else None

    def tlv_cstr(self, tag: int) -> str | None:
        value = self.tlvs.get(tag)
        return value.split(b"\x00", 1)[0].decode("latin-1") if value is not None else None


def header(raw: bytes) -> tuple[int, int, int, int]:
    """(command_length, command_id, command_status, sequence_number) of a PDU of at least 16 octets."""
    length, command_id, status, sequence = struct.unpack(">LLLL", raw[:16])
    return length, command_id, status, sequence


def decode(raw: bytes) -> Pdu:
    """Parse one complete PDU; raise `MalformedPduError` for an unknown command or a body that does not fit."""
    if len(raw) < 16:
        raise MalformedPduError(f"PDU of {len(raw)} octets is shorter than the 16-octet header", ESME_RINVCMDLEN)
    length, command_id, status, sequence = header(raw)
    if length != len(raw):
        raise MalformedPduError(f"command_length {length} but {len(raw)} octets", ESME_RINVCMDLEN, sequence)
    name = COMMAND_NAMES.get(command_id)
    if name is None or name not in LAYOUTS:
        raise MalformedPduError(f"unsupported command_id 0x{command_id:08X}", ESME_RINVCMDID, sequence)
    pdu = Pdu(command_id, status, sequence)
    body = raw[16:]
    if name.endswith("_resp") and status != 0 and not body:
        return pdu
    position = 0
    for field_name, kind, size in LAYOUTS[name]:
        if kind == "u8":
            if position >= len(body):
                raise MalformedPduError(f"{name} ends before {field_name}", ESME_RINVCMDLEN, sequence)
            pdu.fields[field_name] = body[position]
            position += 1
        elif kind == "cstr":
            end = body.find(b"\x00", position, position + size)
            if end < 0:
                problem = "ends before" if len(body) - position < size else "has no NUL within the limit of"
                raise MalformedPduError(
                    f"{name} {problem} {field_name} ({size - 1} characters)", ESME_RINVPARLEN, sequence
                )
            pdu.fields[field_name] = body[position:end].decode("latin-1")
            position = end + 1
        else:  # octets sized by sm_length
            count = int(pdu.fields.get("sm_length", 0))
            if position + count > len(body):
                raise MalformedPduError(f"{name} sm_length {count} runs past the PDU end", ESME_RINVCMDLEN, sequence)
            pdu.fields[field_name] = bytes(body[position : position + count])
            position += count
    while position < len(body):
        if position + 4 > len(body):
            raise MalformedPduError(f"{name} has a truncated TLV header", ESME_RINVOPTPARSTREAM, sequence)
        tag, tlv_length = struct.unpack(">HH", body[position : position + 4])
        if position + 4 + tlv_length > len(body):
            raise MalformedPduError(f"{name} TLV 0x{tag:04X} runs past the PDU end", ESME_RINVOPTPARSTREAM, sequence)
        pdu.tlvs[tag] = bytes(body[position + 4 : position + 4 + tlv_length])
        position += 4 + tlv_length
    return pdu


def encode(
    command: str,
    *,
    sequence: int,
    status: int = 0,
    fields: dict[str, Any] | None = None,
    tlvs: list[tuple[int, bytes]] | None = None,
) -> bytes:
    """Build one PDU; missing integer fields are 0, missing strings empty."""
    values = fields or {}
    body = bytearray()
    layout = LAYOUTS[command]
    if not (command.endswith("_resp") and status != 0 and not values):  # an error response may omit its body
        for field_name, kind, size in layout:
            value = values.get(field_name)
            if kind == "u8":
                body.append(int(value or 0) & 0xFF)
            elif kind == "cstr":
                text = value if isinstance(value, bytes) else str(value or "").encode("latin-1")
                if len(text) >= size:
                    raise ValueError(f"{command}.{field_name} is longer than {size - 1} octets.")
                body += text + b"\x00"
            elif field_name == "short_message":
                data = bytes(value or b"")
                if len(data) > size:
                    raise ValueError(f"{command}.short_message is longer than {size} octets; use message_payload.")
                body[-1] = len(data)  # sm_length, written just before
                body += data
    for tag, value in tlvs or []:
        body += struct.pack(">HH", tag, len(value)) + value
    return struct.pack(">LLLL", 16 + len(body), COMMANDS[command], status, sequence) + bytes(body)


def tlv_u8(tag: int, value: int) -> tuple[int, bytes]:
    return tag, bytes((value & 0xFF,))


def tlv_u16(tag: int, value: int) -> tuple[int, bytes]:
    return tag, struct.pack(">H", value)


def tlv_cstr(tag: int, value: str) -> tuple[int, bytes]:
    return tag, value.encode("latin-1") + b"\x00"
