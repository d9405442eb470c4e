"""Keywords that submit SMS (submit_sm) on the current connection."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from robot.api import logger
from robotlibcore import keyword

from SmppLibrary.addressing import Npi, Ton, address, relative_validity
from SmppLibrary.codec import (
    ESM_UDHI,
    ESME_RTHROTTLED,
    Coding,
    SplitMethod,
    build_udh,
    encode_text,
    parse_coding,
    sar_tlvs,
    split_text,
)
from SmppLibrary.connection import Response, SmppConnection
from SmppLibrary.context import SmppContext
from SmppLibrary.errors import SmppStatusError
from SmppLibrary.keywords.base import SmppComponent

CodingName = Literal["auto", "gsm7", "ucs2", "latin1"]
SplitName = Literal["udh", "sar", "payload"]

SUBMIT_HINTS = {
    0x0B: "Check the destination number and its TON/NPI (dest_ton, dest_npi).",
    0x0A: "Check the source address (sender) and its TON/NPI; the account may not be allowed this sender.",
    0x14: "The SMSC's queue is full: slow down or wait for it to drain.",
    0x45: "The SMSC refused the message; check its routing and the account's permissions.",
    0x08: "The SMSC reported an internal error; check its logs.",
    0x04: "The connection is not bound for submitting: bind as transmitter or transceiver.",
}


@dataclass(frozen=True)
class SubmitPlan:
    """The submit_sm PDUs (as smpplib keyword arguments) for one text, and what they carry."""

    pdus: list[dict[str, Any]]
    coding: Coding
    parts: list[str]
    split: SplitMethod


def plan_submits(
    source: str,
    destination: str,
    text: str,
    *,
    source_ton: Ton | None = None,
    source_npi: Npi | None = None,
    dest_ton: Ton | None = None,
    dest_npi: Npi | None = None,
    coding: str = "auto",
    split: str = "udh",
    registered_delivery: bool = True,
    validity: timedelta | None = None,
    priority: int = 0,
) -> SubmitPlan:
    """Validate everything and build the PDUs; raises `ValueError` before anything is sent."""
    source_addr, s_ton, s_npi = address(source, role="source", ton=source_ton, npi=source_npi, alphanumeric=True)
    dest_addr, d_ton, d_npi = address(destination, role="destination", ton=dest_ton, npi=dest_npi, alphanumeric=False)
    if not 0 <= priority <= 3:
        raise ValueError(f"Priority must be 0..3 (SMPP 3.4 priority_flag), got {priority}.")
    chosen = parse_coding(coding, text)
    method = SplitMethod(split.lower()) if isinstance(split, str) else split
    parts = split_text(text, chosen, method)
    base: dict[str, Any] = {
        "service_type": "",
        "source_addr_ton": s_ton,
        "source_addr_npi": s_npi,
        "source_addr": source_addr,
        "dest_addr_ton": d_ton,
        "dest_addr_npi": d_npi,
        "destination_addr": dest_addr,
        "esm_class": 0,
        "priority_flag": priority,
        "registered_delivery": 1 if registered_delivery else 0,
        "data_coding": chosen.value,
    }
    if validity is not None:
        base["validity_period"] = relative_validity(validity)
    encoded = [encode_text(part, chosen) for part in parts]
    pdus: list[dict[str, Any]] = []
    if method is SplitMethod.PAYLOAD:
        pdus.append({**base, "short_message": None, "message_payload": encoded[0]})
    elif len(parts) == 1:
        pdus.append({**base, "short_message": encoded[0]})
    elif method is SplitMethod.UDH:
        ref = random.randint(0, 255)
        for number, data in enumerate(encoded, start=1):
            udh = build_udh(ref, len(parts), number)
            pdus.append({**base, "esm_class": ESM_UDHI, "short_message": udh + data})
    else:
        ref = random.randint(0, 0xFFFF)
        for number, data in enumerate(encoded, start=1):
            pdus.append({**base, "short_message": data, **sar_tlvs(ref, len(parts), number)})
    return SubmitPlan(pdus, chosen, parts, method)


def submit_with_retry(
    ctx: SmppContext, connection: SmppConnection, fields: dict[str, Any], timeout: float, what: str
) -> Response:
    """Submit one PDU; on ESME_RTHROTTLED back off (doubling) and retry up to the library's limit."""
    backoff = ctx.throttle_backoff.total_seconds()
    for attempt in range(ctx.throttle_retries + 1):
        response = connection.request("submit_sm", timeout, **fields)
        if response.status != ESME_RTHROTTLED:
            break
        if attempt < ctx.throttle_retries:
            pause = backoff * (2**attempt)
            logger.info(f"{what}: ESME_RTHROTTLED; retry {attempt + 1}/{ctx.throttle_retries} in {pause:g} s.")
            time.sleep(pause)
    if response.status == ESME_RTHROTTLED:
        raise SmppStatusError(
            what,
            response.status,
            f"Still throttled after {ctx.throttle_retries} retries backing off from {backoff:g} s; "
            "lower the rate or raise throttle_retries / throttle_backoff.",
        )
    if response.status:
        raise SmppStatusError(what, response.status, SUBMIT_HINTS.get(response.status, ""))
    return response


class SubmitKeywords(SmppComponent):
    @keyword(name="Submit SMS")
    def submit_sms(
        self,
        source: str,
        destination: str,
        text: str,
        *,
        source_ton: Ton | None = None,
        source_npi: Npi | None = None,
        dest_ton: Ton | None = None,
        dest_npi: Npi | None = None,
        coding: CodingName = "auto",
        split: SplitName = "udh",
        registered_delivery: bool = True,
        validity: timedelta | None = None,
        priority: int = 0,
        timeout: timedelta | None = None,
    ) -> list[str]:
        """Submits ``text`` from ``source`` to ``destination``; returns the message ids, one per part.

        ``coding``: ``auto`` (GSM7 when every character fits the GSM 03.38 alphabet, else UCS2), ``gsm7``,
        ``ucs2`` or ``latin1``. A text longer than one SMS (160 GSM7 / 70 UCS2 / 140 Latin-1 units) is sent
        in parts of 153/67/134, concatenated by ``split``: ``udh`` (a user data header, the default),
        ``sar`` (the SAR TLVs) or ``payload`` (one submit_sm with the whole text in ``message_payload``).
        A GSM escape character (``€ [ ] { } ~ ^ \\ |``) or an emoji never straddles two parts.

        Without ``source_ton``: a numeric source is international/ISDN, up to 11 other characters are an
        alphanumeric sender. Numbers may start with ``+``; anything but digits in a number fails before
        sending. ``registered_delivery`` asks for a delivery receipt per part (see `Wait Until Delivery
        Receipt`). ``validity`` becomes a relative validity period; ``priority`` is 0..3.

        Each part waits up to ``timeout`` for its ``submit_sm_resp``. ``ESME_RTHROTTLED`` is retried with
        back-off (library arguments ``throttle_retries`` and ``throttle_backoff``); any other error status
        fails naming it, e.g. ``ESME_RINVDSTADR``.

        | ${ids}= | `Submit SMS` | 4915100000001 | 4915100000002 | Hello |
        | ${ids}= | `Submit SMS` | ACME | 4915100000002 | Grüße € | coding=ucs2 | split=sar |
        | ${ids}= | `Submit SMS` | 4915100000001 | 4915100000002 | ${LONG_TEXT} | registered_delivery=False |
        """
        plan = plan_submits(
            source,
            destination,
            text,
            source_ton=source_ton,
            source_npi=source_npi,
            dest_ton=dest_ton,
            dest_npi=dest_npi,
            coding=coding,
            split=split,
            registered_delivery=registered_delivery,
            validity=validity,
            priority=priority,
        )
        connection = self.ctx.current()
        seconds = self.ctx.seconds(timeout)
        total = len(plan.pdus)
        logger.info(
            f"Submitting {plan.coding.label} SMS of {len(text)} characters in {total} part(s)"
            f"{f' ({plan.split.value})' if total > 1 else ''} from '{source}' to '{destination}' "
            f"on {connection.alias or connection.label}."
        )
        ids: list[str] = []
        for number, fields in enumerate(plan.pdus, start=1):
            what = f"Submit of part {number}/{total} from '{source}' to '{destination}' via {connection.endpoint}"
            if total == 1:
                what = f"Submit from '{source}' to '{destination}' via {connection.endpoint}"
            logger.debug(f"submit_sm {number}/{total}: {_describe_fields(fields)}")
            response = submit_with_retry(self.ctx, connection, fields, seconds, what)
            ids.append(response.message_id)
        self.ctx.drain()
        logger.info(f"Accepted; message id(s): {', '.join(ids)}.")
        return ids


def _describe_fields(fields: dict[str, Any]) -> str:
    shown = []
    for key, value in fields.items():
        if value is None:
            continue
        shown.append(f"{key}={value.hex() if isinstance(value, bytes) else value}")
    return " ".join(shown)
