"""What the ESME side received, sorted on the keyword thread: delivery receipts and (reassembled) MO messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from SmppLibrary.codec import (
    ESM_DELIVERY_RECEIPT,
    ESM_TYPE_MASK,
    ESM_UDHI,
    STATE_WORDS,
    Concat,
    MessageState,
    Reassembler,
    coding_of,
    decode_text,
    message_ids_match,
    parse_receipt,
    parse_udh,
)

ESM_INTERMEDIATE_NOTIFICATION = 0x20


class Inbox:
    """Receipts (kept, so several keywords can read them) and MO messages (taken once by a matching wait)."""

    def __init__(self) -> None:
        self.receipts: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self._reassembler = Reassembler()

    def add(self, fields: dict[str, Any], connection: str) -> tuple[str, dict[str, Any] | None]:
        """File one deliver_sm: ``("receipt", r)``, ``("mo", m)``, or ``("part", None)`` for an incomplete part."""
        if is_receipt(fields):
            receipt = receipt_from(fields, connection)
            self.receipts.append(receipt)
            return "receipt", receipt
        data = fields["short_message"] or fields["message_payload"]
        concat: Concat | None = None
        if fields["esm_class"] & ESM_UDHI:
            try:
                concat, data = parse_udh(data)
            except ValueError:
                concat = None
        elif fields["sar"]:
            ref, total, seq = fields["sar"]
            concat = Concat(ref, total, seq, "sar")
        total = 1
        if concat is not None and concat.total > 1:
            joined = self._reassembler.add(
                (fields["source"], fields["destination"]), concat, data, fields["data_coding"]
            )
            if joined is None:
                return "part", None
            data, total = joined, concat.total
        message = {
            "source": fields["source"],
            "destination": fields["destination"],
            "text": decode_text(data, fields["data_coding"]),
            "coding": coding_of(fields["data_coding"]).label,
            "data_coding": fields["data_coding"],
            "parts": total,
            "esm_class": fields["esm_class"],
            "connection": connection,
            "received_at": _iso(fields["received_at"]),
        }
        self.messages.append(message)
        return "mo", message

    def receipts_for(self, message_id: str) -> list[dict[str, Any]]:
        return [receipt for receipt in self.receipts if receipt_matches(receipt, message_id)]

    def incomplete(self) -> list[str]:
        return self._reassembler.describe_incomplete()


def is_receipt(fields: dict[str, Any]) -> bool:
    kind = fields["esm_class"] & ESM_TYPE_MASK
    if kind in (ESM_DELIVERY_RECEIPT, ESM_INTERMEDIATE_NOTIFICATION):
        return True
    return bool(fields["receipted_message_id"]) and kind == 0 and fields["message_state"] is not None


def receipt_from(fields: dict[str, Any], connection: str) -> dict[str, Any]:
    """A receipt as keywords return it: ``id``, ``state``, ``error``, ``submit_date``, ``done_date``, ..."""
    data = fields["short_message"] or fields["message_payload"]
    # Receipt texts are ASCII in practice even with data_coding 0; GSM-decoding them would turn '_' into '§'.
    raw = data.decode("latin-1") if fields["data_coding"] == 0 else decode_text(data, fields["data_coding"])
    parsed = parse_receipt(raw) or {}
    message_state = fields["message_state"]
    state = parsed.get("stat")
    if not state and message_state is not None and int(message_state) in STATE_WORDS:
        state = STATE_WORDS[MessageState(int(message_state))]
    return {
        "id": fields["receipted_message_id"] or parsed.get("id", ""),
        "text_id": parsed.get("id"),
        "state": state or "",
        "error": parsed.get("err", ""),
        "submit_date": parsed.get("submit_date", ""),
        "done_date": parsed.get("done_date", ""),
        "sub": parsed.get("sub", ""),
        "dlvrd": parsed.get("dlvrd", ""),
        "text": parsed.get("text", ""),
        "message_state": message_state,
        "source": fields["source"],
        "destination": fields["destination"],
        "raw": raw,
        "connection": connection,
        "received_at": _iso(fields["received_at"]),
    }


def receipt_matches(receipt: dict[str, Any], message_id: str) -> bool:
    """By ``receipted_message_id`` (TLV 0x001E) or the ``id:`` of the receipt text."""
    return message_ids_match(message_id, receipt["id"]) or bool(
        receipt["text_id"] and message_ids_match(message_id, receipt["text_id"])
    )


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
