"""Pure SMPP 3.4 text and field handling: no sockets, no threads, no Robot.

GSM 03.38 (unpacked septets, one per octet, as SMPP carries them), UCS2 (UTF-16BE, so emoji travel as
surrogate pairs), Latin-1; splitting a long text into parts without ever cutting a GSM escape pair or a
UTF-16 surrogate pair; the concatenation UDH and the SAR TLVs; reassembly of parts; the delivery-receipt
text; and the SMPP 3.4 command_status and message_state tables.

smpplib ships a GSM table and ``make_parts``, but its table has a backtick where GSM has ``§`` and its
splitter cuts escape and surrogate pairs in half, so this module does both itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, IntEnum
from typing import Any

# --- GSM 03.38 ------------------------------------------------------------------------------------------

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_ESCAPE = 0x1B
GSM_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_GSM_ENCODE = {char: index for index, char in enumerate(GSM_BASIC) if index != GSM_ESCAPE}
_GSM_EXT_DECODE = {code: char for char, code in GSM_EXTENSION.items()}

if len(GSM_BASIC) != 128:  # a table typo would silently shift every character
    raise RuntimeError(f"GSM 03.38 table has {len(GSM_BASIC)} entries, not 128.")


class Coding(Enum):
    """The data codings the library sends and decodes, with their SMPP ``data_coding`` value."""

    GSM7 = 0x00
    IA5 = 0x01
    LATIN1 = 0x03
    UCS2 = 0x08
    BINARY = 0x04

    @property
    def label(self) -> str:
        return self.name.lower()


class SplitMethod(Enum):
    """How a long text is carried: UDH in the payload, SAR TLVs, or one ``message_payload`` TLV."""

    UDH = "udh"
    SAR = "sar"
    PAYLOAD = "payload"


# Units per message: GSM7 septets, UCS2 16-bit code units, Latin-1 octets.
SINGLE_LIMIT = {Coding.GSM7: 160, Coding.UCS2: 70, Coding.LATIN1: 140, Coding.IA5: 160, Coding.BINARY: 140}
PART_LIMIT = {Coding.GSM7: 153, Coding.UCS2: 67, Coding.LATIN1: 134, Coding.IA5: 153, Coding.BINARY: 134}
MAX_PARTS = 255


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM 03.38 default alphabet or its extension table."""
    return all(char in _GSM_ENCODE or char in GSM_EXTENSION for char in text)


def gsm7_encode(text: str) -> bytes:
    """GSM 03.38 unpacked (one septet per octet); extension characters become ``0x1B`` + code."""
    out = bytearray()
    for position, char in enumerate(text):
        if char in _GSM_ENCODE:
            out.append(_GSM_ENCODE[char])
        elif char in GSM_EXTENSION:
            out += bytes((GSM_ESCAPE, GSM_EXTENSION[char]))
        else:
            raise ValueError(
                f"Character {char!r} (U+{ord(char):04X}) at position {position} is not in the GSM 03.38 alphabet. "
                "Use coding=ucs2 (or coding=auto)."
            )
    return bytes(out)


def gsm7_decode(data: bytes) -> str:
    """Decode unpacked GSM 03.38; an unknown escape code decodes as a space, as handsets show it."""
    chars: list[str] = []
    escaped = False
    for octet in data:
        septet = octet & 0x7F
        if escaped:
            chars.append(_GSM_EXT_DECODE.get(septet, " "))
            escaped = False
        elif septet == GSM_ESCAPE:
            escaped = True
        else:
            chars.append(GSM_BASIC[septet])
    return "".join(chars)


def gsm7_length(text: str) -> int:
    """Septets ``text`` takes in GSM 03.38 (extension characters take two)."""
    return sum(2 if char in GSM_EXTENSION else 1 for char in text)


def choose_coding(text: str) -> Coding:
    """GSM7 when every character fits the GSM alphabet, UCS2 otherwise."""
    return Coding.GSM7 if is_gsm7(text) else Coding.UCS2


def parse_coding(value: str | Coding, text: str = "") -> Coding:
    """``auto``/``gsm7``/``ucs2``/``latin1`` (case-insensitive) to a `Coding`; ``auto`` looks at ``text``."""
    if isinstance(value, Coding):
        return value
    name = value.strip().lower().replace("-", "").replace("_", "")
    aliases = {
        "gsm7": Coding.GSM7,
        "gsm": Coding.GSM7,
        "default": Coding.GSM7,
        "ucs2": Coding.UCS2,
        "utf16": Coding.UCS2,
        "latin1": Coding.LATIN1,
        "iso88591": Coding.LATIN1,
        "ia5": Coding.IA5,
        "ascii": Coding.IA5,
    }
    if name == "auto":
        return choose_coding(text)
    if name not in aliases:
        raise ValueError(f"Unknown coding '{value}'. Use auto, gsm7, ucs2 or latin1.")
    return aliases[name]


def encode_text(text: str, coding: Coding) -> bytes:
    """The octets of ``text`` in ``coding`` (UCS2 is UTF-16BE, so characters beyond U+FFFF are surrogate pairs)."""
    if coding is Coding.GSM7:
        return gsm7_encode(text)
    if coding is Coding.UCS2:
        return text.encode("utf-16-be")
    if coding is Coding.LATIN1:
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"Text has {text[error.start]!r} at position {error.start}, which Latin-1 cannot carry. "
                "Use coding=ucs2 (or coding=auto)."
            ) from None
    if coding is Coding.IA5:
        try:
            return text.encode("ascii")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"Text has {text[error.start]!r}, which IA5/ASCII cannot carry. Use coding=ucs2."
            ) from None
    raise ValueError(f"Cannot encode text as {coding.label}.")


def coding_of(data_coding: int) -> Coding:
    """The alphabet an SMPP ``data_coding`` value means (SMPP 3.4 5.2.19, GSM 03.38 coding groups)."""
    if data_coding in (0x00, 0x10):
        return Coding.GSM7
    if data_coding == 0x01:
        return Coding.IA5
    if data_coding == 0x03:
        return Coding.LATIN1
    if data_coding in (0x08, 0x18):
        return Coding.UCS2
    if data_coding & 0xF0 == 0xF0:
        return Coding.BINARY if data_coding & 0x04 else Coding.GSM7
    if data_coding & 0xC0 == 0x00:  # general data coding group: bits 3..2 give the alphabet
        alphabet = (data_coding >> 2) & 0x03
        return {0: Coding.GSM7, 1: Coding.BINARY, 2: Coding.UCS2}.get(alphabet, Coding.BINARY)
    return Coding.BINARY


def decode_text(data: bytes, data_coding: int) -> str:
    """Decode message octets by their ``data_coding``; binary content comes back as Latin-1."""
    coding = coding_of(data_coding)
    if coding is Coding.GSM7:
        return gsm7_decode(data)
    if coding is Coding.UCS2:
        return data.decode("utf-16-be", errors="replace")
    if coding is Coding.IA5:
        return data.decode("ascii", errors="replace")
    return data.decode("latin-1")


def _unit_cost(char: str, coding: Coding) -> int:
    if coding is Coding.GSM7:
        return 2 if char in GSM_EXTENSION else 1
    if coding is Coding.UCS2:
        return 2 if ord(char) > 0xFFFF else 1
    return 1


def text_units(text: str, coding: Coding) -> int:
    """Length of ``text`` in the units SMS limits count: septets, UTF-16 code units or octets."""
    return sum(_unit_cost(char, coding) for char in text)


def split_text(text: str, coding: Coding, method: SplitMethod | str = SplitMethod.UDH) -> list[str]:
    """Split ``text`` into the texts of its parts.

    A text that fits one message (160 GSM7 septets, 70 UCS2 units, 140 Latin-1 octets) is one part. Longer
    texts are cut at 153/67/134 (room for the 6-octet UDH; SAR uses the same sizes so the SMSC can add the
    UDH towards the handset). A GSM escape pair (``€ { } [ ] ~ ^ \\ |``) or a surrogate pair (emoji) that
    would straddle a boundary moves whole into the next part. ``payload`` never splits.
    """
    method = SplitMethod(method) if isinstance(method, str) else method
    if method is SplitMethod.PAYLOAD or text_units(text, coding) <= SINGLE_LIMIT[coding]:
        return [text]
    limit = PART_LIMIT[coding]
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        cost = _unit_cost(char, coding)
        if used + cost > limit:
            parts.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += cost
    if current:
        parts.append("".join(current))
    if len(parts) > MAX_PARTS:
        raise ValueError(
            f"Text of {len(text)} characters needs {len(parts)} parts; SMS concatenation allows at most {MAX_PARTS}."
        )
    return parts


# --- UDH and SAR ------------------------------------------------------------------------------------------

UDH_CONCAT_8BIT = 0x00
UDH_CONCAT_16BIT = 0x08
ESM_UDHI = 0x40
ESM_DELIVERY_RECEIPT = 0x04
ESM_TYPE_MASK = 0x3C


@dataclass(frozen=True)
class Concat:
    """Where a part belongs: reference number, total parts, this part's sequence number (1-based)."""

    ref: int
    total: int
    seq: int
    scheme: str = "udh"

    def as_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "total": self.total, "seq": self.seq, "scheme": self.scheme}


def build_udh(ref: int, total: int, seq: int) -> bytes:
    """The 6-octet concatenation UDH with an 8-bit reference (IE 0x00)."""
    for name, value, low in (("ref", ref, 0), ("total", total, 1), ("seq", seq, 1)):
        if not low <= value <= 255:
            raise ValueError(f"UDH {name} must be {low}..255, got {value}.")
    return bytes((0x05, UDH_CONCAT_8BIT, 0x03, ref, total, seq))


def parse_udh(short_message: bytes) -> tuple[Concat | None, bytes]:
    """Split a UDHI payload into its concatenation info (IE 0x00 or 0x08, if any) and the user data."""
    if not short_message:
        return None, short_message
    header_length = short_message[0]
    if header_length + 1 > len(short_message):
        raise ValueError(f"UDH length {header_length} exceeds the {len(short_message)}-octet payload.")
    header = short_message[1 : header_length + 1]
    body = short_message[header_length + 1 :]
    concat: Concat | None = None
    position = 0
    while position + 2 <= len(header):
        ie_id, ie_length = header[position], header[position + 1]
        value = header[position + 2 : position + 2 + ie_length]
        if ie_id == UDH_CONCAT_8BIT and ie_length == 3 and len(value) == 3:
            concat = Concat(value[0], value[1], value[2], "udh")
        elif ie_id == UDH_CONCAT_16BIT and ie_length == 4 and len(value) == 4:
            concat = Concat((value[0] << 8) | value[1], value[2], value[3], "udh16")
        position += 2 + ie_length
    return concat, body


def sar_tlvs(ref: int, total: int, seq: int) -> dict[str, int]:
    """The SAR optional parameters (``sar_msg_ref_num`` is 16-bit) as smpplib keyword arguments."""
    if not 0 <= ref <= 0xFFFF:
        raise ValueError(f"SAR reference must be 0..65535, got {ref}.")
    return {"sar_msg_ref_num": ref, "sar_total_segments": total, "sar_segment_seqnum": seq}


@dataclass
class _Pending:
    total: int
    coding: int
    parts: dict[int, bytes] = field(default_factory=dict)


class Reassembler:
    """Collects the parts of concatenated messages (in any order) until a message is complete.

    ``add`` returns the joined user data once every part of that message has arrived. Octets are joined
    before decoding, so a GSM escape pair or a surrogate pair cut by another sender still decodes.
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[Any, ...], _Pending] = {}

    def add(self, key: tuple[Any, ...], concat: Concat, payload: bytes, data_coding: int) -> bytes | None:
        full_key = (*key, concat.scheme != "sar", concat.ref, concat.total)
        pending = self._pending.setdefault(full_key, _Pending(concat.total, data_coding))
        pending.parts[concat.seq] = payload
        if len(pending.parts) < pending.total or any(n not in pending.parts for n in range(1, pending.total + 1)):
            return None
        del self._pending[full_key]
        return b"".join(pending.parts[n] for n in range(1, pending.total + 1))

    @property
    def incomplete(self) -> int:
        return len(self._pending)

    def describe_incomplete(self) -> list[str]:
        return [f"ref {key[-2]}: parts {sorted(p.parts)} of {p.total}" for key, p in self._pending.items()]


def reassemble_text(parts: Iterable[tuple[Concat | None, bytes, int]]) -> list[tuple[str, int, int]]:
    """Join (concat, payload, data_coding) parts into ``(text, data_coding, part_count)`` per message."""
    reassembler = Reassembler()
    messages: list[tuple[str, int, int]] = []
    for concat, payload, data_coding in parts:
        if concat is None or concat.total <= 1:
            messages.append((decode_text(payload, data_coding), data_coding, 1))
            continue
        joined = reassembler.add((), concat, payload, data_coding)
        if joined is not None:
            messages.append((decode_text(joined, data_coding), data_coding, concat.total))
    return messages


# --- delivery receipts ----------------------------------------------------------------------------------


class MessageState(IntEnum):
    """SMPP 3.4 ``message_state`` (TLV 0x0427) values."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


# The short ``stat:`` words of the receipt text and their message_state values.
RECEIPT_STATES = {
    "ENROUTE": MessageState.ENROUTE,
    "DELIVRD": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "ACCEPTD": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN,
    "REJECTD": MessageState.REJECTED,
}
STATE_WORDS = {value: word for word, value in RECEIPT_STATES.items()}
FINAL_STATES = frozenset({"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "REJECTD", "UNKNOWN"})


def receipt_state(value: str) -> str:
    """Normalise a state given by a tester (``delivrd``, ``DELIVERED``, ``2``) to the receipt word ``DELIVRD``."""
    word = value.strip().upper()
    if word in RECEIPT_STATES:
        return word
    if word.isdigit() and int(word) in STATE_WORDS:
        return STATE_WORDS[MessageState(int(word))]
    if word in MessageState.__members__:
        return STATE_WORDS[MessageState[word]]
    raise ValueError(f"Unknown delivery state '{value}'. Use one of {', '.join(RECEIPT_STATES)}.")


def receipt_time(moment: datetime) -> str:
    """``YYMMDDhhmm`` as receipt texts write dates."""
    return moment.strftime("%y%m%d%H%M")


def format_receipt(
    message_id: str,
    state: str,
    *,
    error: int = 0,
    submitted: datetime,
    done: datetime,
    text: str = "",
    sub: int = 1,
    dlvrd: int | None = None,
) -> str:
    """The de-facto receipt text of SMPP 3.4 Appendix B: ``id:… sub:001 dlvrd:001 submit date:… stat:… text:…``."""
    word = receipt_state(state)
    delivered = dlvrd if dlvrd is not None else (1 if word == "DELIVRD" else 0)
    return (
        f"id:{message_id} sub:{sub:03d} dlvrd:{delivered:03d} submit date:{receipt_time(submitted)} "
        f"done date:{receipt_time(done)} stat:{word} err:{error:03d} text:{text[:20]}"
    )


_RECEIPT_FIELD = re.compile(r"(?P<key>id|sub|dlvrd|submit date|done date|stat|err|text)\s*:\s*", re.IGNORECASE)


def parse_receipt(text: str) -> dict[str, str] | None:
    """The fields of a receipt text as strings (keys ``id``, ``sub``, ``dlvrd``, ``submit_date``, ``done_date``,
    ``stat``, ``err``, ``text``); ``None`` when ``text`` does not look like a receipt (no ``id:`` or ``stat:``)."""
    matches = list(_RECEIPT_FIELD.finditer(text))
    fields: dict[str, str] = {}
    for index, match in enumerate(matches):
        key = match.group("key").lower().replace(" ", "_")
        end = len(text) if key == "text" or index + 1 == len(matches) else matches[index + 1].start()
        if key == "text":
            fields[key] = text[match.end() :]
            break
        fields.setdefault(key, text[match.end() : end].strip())
    if "id" not in fields or "stat" not in fields:
        return None
    fields["stat"] = fields["stat"].upper()
    return fields


def parse_receipt_time(value: str) -> datetime | None:
    """``YYMMDDhhmm`` or ``YYMMDDhhmmss`` to a datetime; ``None`` for anything else."""
    for pattern in ("%y%m%d%H%M%S", "%y%m%d%H%M"):
        try:
            return datetime.strptime(value, pattern)
        except ValueError:
            continue
    return None


def normalise_message_id(message_id: str | bytes) -> str:
    """Message ids compared without case and surrounding blanks (Jasmin's are UUIDs)."""
    if isinstance(message_id, bytes):
        message_id = message_id.decode("latin-1")
    return message_id.strip().rstrip("\x00").lower()


def message_ids_match(submitted: str, receipted: str) -> bool:
    """True when a submit_sm_resp id and a receipt id name the same message.

    Compared case-insensitively; SMSCs that answer submit_sm with a hex id often write the receipt id in
    decimal (SMPP 3.4 Appendix B), so a hex id also matches its decimal value, and leading zeros do not count.
    """
    left, right = normalise_message_id(submitted), normalise_message_id(receipted)
    if not left or not right:
        return False
    if left == right:
        return True
    if left.isdigit() and right.isdigit() and int(left) == int(right):
        return True
    hex_digits = set("0123456789abcdef")
    if len(left) <= 16 and set(left) <= hex_digits and right.isdigit():
        return int(left, 16) == int(right)
    if len(right) <= 16 and set(right) <= hex_digits and left.isdigit():
        return int(right, 16) == int(left)
    return False


# --- command_status -----------------------------------------------------------------------------------------

STATUSES: dict[int, tuple[str, str]] = {
    0x00000000: ("ESME_ROK", "No Error"),
    0x00000001: ("ESME_RINVMSGLEN", "Message Length is invalid"),
    0x00000002: ("ESME_RINVCMDLEN", "Command Length is invalid"),
    0x00000003: ("ESME_RINVCMDID", "Invalid Command ID"),
    0x00000004: ("ESME_RINVBNDSTS", "Incorrect BIND Status for given command"),
    0x00000005: ("ESME_RALYBND", "ESME Already in Bound State"),
    0x00000006: ("ESME_RINVPRTFLG", "Invalid Priority Flag"),
    0x00000007: ("ESME_RINVREGDLVFLG", "Invalid Registered Delivery Flag"),
    0x00000008: ("ESME_RSYSERR", "System Error"),
    0x0000000A: ("ESME_RINVSRCADR", "Invalid Source Address"),
    0x0000000B: ("ESME_RINVDSTADR", "Invalid Dest Addr"),
    0x0000000C: ("ESME_RINVMSGID", "Message ID is invalid"),
    0x0000000D: ("ESME_RBINDFAIL", "Bind Failed"),
    0x0000000E: ("ESME_RINVPASWD", "Invalid Password"),
    0x0000000F: ("ESME_RINVSYSID", "Invalid System ID"),
    0x00000011: ("ESME_RCANCELFAIL", "Cancel SM Failed"),
    0x00000013: ("ESME_RREPLACEFAIL", "Replace SM Failed"),
    0x00000014: ("ESME_RMSGQFUL", "Message Queue Full"),
    0x00000015: ("ESME_RINVSERTYP", "Invalid Service Type"),
    0x00000033: ("ESME_RINVNUMDESTS", "Invalid number of destinations"),
    0x00000034: ("ESME_RINVDLNAME", "Invalid Distribution List name"),
    0x00000040: ("ESME_RINVDESTFLAG", "Destination flag is invalid (submit_multi)"),
    0x00000042: ("ESME_RINVSUBREP", "Invalid 'submit with replace' request"),
    0x00000043: ("ESME_RINVESMCLASS", "Invalid esm_class field data"),
    0x00000044: ("ESME_RCNTSUBDL", "Cannot Submit to Distribution List"),
    0x00000045: ("ESME_RSUBMITFAIL", "submit_sm or submit_multi failed"),
    0x00000048: ("ESME_RINVSRCTON", "Invalid Source address TON"),
    0x00000049: ("ESME_RINVSRCNPI", "Invalid Source address NPI"),
    0x00000050: ("ESME_RINVDSTTON", "Invalid Destination address TON"),
    0x00000051: ("ESME_RINVDSTNPI", "Invalid Destination address NPI"),
    0x00000053: ("ESME_RINVSYSTYP", "Invalid system_type field"),
    0x00000054: ("ESME_RINVREPFLAG", "Invalid replace_if_present flag"),
    0x00000055: ("ESME_RINVNUMMSGS", "Invalid number of messages"),
    0x00000058: ("ESME_RTHROTTLED", "Throttling error (ESME has exceeded allowed message limits)"),
    0x00000061: ("ESME_RINVSCHED", "Invalid Scheduled Delivery Time"),
    0x00000062: ("ESME_RINVEXPIRY", "Invalid message validity period (Expiry time)"),
    0x00000063: ("ESME_RINVDFTMSGID", "Predefined Message Invalid or Not Found"),
    0x00000064: ("ESME_RX_T_APPN", "ESME Receiver Temporary App Error Code"),
    0x00000065: ("ESME_RX_P_APPN", "ESME Receiver Permanent App Error Code"),
    0x00000066: ("ESME_RX_R_APPN", "ESME Receiver Reject Message Error Code"),
    0x00000067: ("ESME_RQUERYFAIL", "query_sm request failed"),
    0x000000C0: ("ESME_RINVOPTPARSTREAM", "Error in the optional part of the PDU Body"),
    0x000000C1: ("ESME_ROPTPARNOTALLWD", "Optional Parameter not allowed"),
    0x000000C2: ("ESME_RINVPARLEN", "Invalid Parameter Length"),
    0x000000C3: ("ESME_RMISSINGOPTPARAM", "Expected Optional Parameter missing"),
    0x000000C4: ("ESME_RINVOPTPARAMVAL", "Invalid Optional Parameter Value"),
    0x000000FE: ("ESME_RDELIVERYFAILURE", "Delivery Failure (used for data_sm_resp)"),
    0x000000FF: ("ESME_RUNKNOWNERR", "Unknown Error"),
}
_STATUS_BY_NAME = {name: code for code, (name, _) in STATUSES.items()}

ESME_ROK = 0x00
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RINVMSGLEN = 0x01
ESME_RUNKNOWNERR = 0xFF


def status_name(code: int) -> str:
    """``ESME_RINVPASWD`` for 0x0E; reserved and vendor-specific codes as ``0x00000400`` hex."""
    known = STATUSES.get(code)
    if known:
        return known[0]
    return f"0x{code:08X}"


def status_description(code: int) -> str:
    known = STATUSES.get(code)
    if known:
        return known[1]
    if 0x400 <= code <= 0x4FF:
        return "SMSC vendor-specific error"
    return "Reserved or unknown status"


def describe_status(code: int) -> str:
    """``ESME_RINVPASWD (0x0000000E, Invalid Password)``."""
    return f"{status_name(code)} (0x{code:08X}, {status_description(code)})"


def status_code(value: str | int) -> int:
    """A status given as a name (``ESME_RTHROTTLED``, ``RTHROTTLED``, case-insensitive) or a number."""
    if isinstance(value, int):
        return value
    text = value.strip().upper()
    if text in _STATUS_BY_NAME:
        return _STATUS_BY_NAME[text]
    if f"ESME_{text}" in _STATUS_BY_NAME:
        return _STATUS_BY_NAME[f"ESME_{text}"]
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(
            f"Unknown SMPP status '{value}'. Use a name such as ESME_RTHROTTLED or a number such as 0x58."
        ) from None
