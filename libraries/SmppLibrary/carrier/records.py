"""Turn the carrier's per-PDU records into messages: concatenated parts (UDH or SAR) joined, text decoded.

Pure functions over the JSON-friendly records that `CarrierSmsc.submits` and the control API return, so a
local and a remote carrier are read the same way.
"""

from __future__ import annotations

from typing import Any

from SmppLibrary.codec import decode_text


def group_messages(submits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Accepted submits (status ESME_ROK) as messages in order of their first part.

    Each message: ``source``, ``destination``, ``text``, ``coding``, ``parts``, ``complete`` (every part
    arrived), ``message_ids`` (one per part, in part order), ``system_id``, ``registered_delivery``,
    ``esm_class``, ``data_coding``, the TON/NPI values, ``scheme`` (``single``, ``udh``, ``udh16``, ``sar``)
    and ``timestamp`` of the first part.
    """
    messages: list[dict[str, Any]] = []
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in submits:
        if record.get("status") != "ESME_ROK":
            continue
        concat = record.get("udh") or record.get("sar")
        if not concat or int(concat["total"]) <= 1:
            messages.append(_message([record], single=True))
            continue
        key = (
            record.get("system_id"),
            record["source"],
            record["destination"],
            concat["scheme"],
            concat["ref"],
            concat["total"],
        )
        group = groups.get(key)
        if group is None or concat["seq"] in group["parts"]:  # a reused reference starts a new message
            group = {"parts": {}, "slot": len(messages), "total": int(concat["total"])}
            groups[key] = group
            messages.append({})
        group["parts"][concat["seq"]] = record
        ordered = [group["parts"][seq] for seq in sorted(group["parts"])]
        message = _message(ordered, single=False)
        message["complete"] = len(group["parts"]) == group["total"] and set(group["parts"]) == set(
            range(1, group["total"] + 1)
        )
        message["parts"] = group["total"]
        message["parts_received"] = len(group["parts"])
        messages[group["slot"]] = message
    return messages


def _message(records: list[dict[str, Any]], *, single: bool) -> dict[str, Any]:
    first = records[0]
    data = b"".join(bytes.fromhex(record["payload"]) for record in records)
    concat = first.get("udh") or first.get("sar")
    return {
        "source": first["source"],
        "source_ton": first["source_ton"],
        "source_npi": first["source_npi"],
        "destination": first["destination"],
        "dest_ton": first["dest_ton"],
        "dest_npi": first["dest_npi"],
        "text": decode_text(data, int(first["data_coding"])),
        "coding": first["coding"],
        "data_coding": first["data_coding"],
        "esm_class": first["esm_class"],
        "registered_delivery": first["registered_delivery"],
        "parts": len(records),
        "parts_received": len(records),
        "complete": True,
        "scheme": "single" if single or not concat else concat["scheme"],
        "message_ids": [record["message_id"] for record in records],
        "system_id": first.get("system_id"),
        "timestamp": first["timestamp"],
    }


def describe_message(message: dict[str, Any], limit: int = 60) -> str:
    """One line for failure messages: to/from, coding, parts and the start of the text."""
    text = message["text"]
    shown = text if len(text) <= limit else f"{text[:limit]}..."
    parts = (
        f"{message['parts_received']}/{message['parts']} parts"
        if not message["complete"]
        else (f"{message['parts']} part{'s' if message['parts'] != 1 else ''}")
    )
    return f"to '{message['destination']}' from '{message['source']}', {message['coding']}, {parts}: {shown!r}"
