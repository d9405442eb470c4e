"""SMPP addresses: TON/NPI values and the checks a number gets before anything is sent."""

from __future__ import annotations

from datetime import timedelta
from enum import IntEnum

from SmppLibrary.codec import is_gsm7


class Ton(IntEnum):
    """Type of number (SMPP 3.4 5.2.5)."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER = 4
    ALPHANUMERIC = 5
    ABBREVIATED = 6


class Npi(IntEnum):
    """Numbering plan indicator (SMPP 3.4 5.2.6)."""

    UNKNOWN = 0
    ISDN = 1
    DATA = 3
    TELEX = 4
    LAND_MOBILE = 6
    NATIONAL = 8
    PRIVATE = 9
    ERMES = 10
    INTERNET = 14
    WAP = 18


NUMERIC_TONS = (Ton.INTERNATIONAL, Ton.NATIONAL, Ton.SUBSCRIBER, Ton.ABBREVIATED)
MAX_ADDRESS = 20  # submit_sm source_addr/destination_addr are C-Octet Strings of at most 21 octets
MAX_ALPHANUMERIC = 11


def address(
    value: str,
    *,
    role: str,
    ton: Ton | int | None,
    npi: Npi | int | None,
    alphanumeric: bool,
) -> tuple[str, int, int]:
    """Check an address and fill in TON/NPI: ``(address, ton, npi)``; a `ValueError` names the value and the fix.

    Without ``ton``: digits (a leading ``+`` is dropped) are international/ISDN; otherwise, when ``alphanumeric``
    is allowed (sources), up to 11 GSM characters are alphanumeric/unknown.
    """
    text = value.strip() if isinstance(value, str) else str(value)
    if not text:
        raise ValueError(f"The {role} address is empty. Give a number in international form, e.g. 4915112345678.")
    digits = text[1:] if text.startswith("+") else text
    if ton is None:
        if digits.isdigit():
            ton, npi = Ton.INTERNATIONAL, Npi.ISDN if npi is None else npi
        elif alphanumeric and len(text) <= MAX_ALPHANUMERIC and is_gsm7(text):
            ton, npi = Ton.ALPHANUMERIC, Npi.UNKNOWN if npi is None else npi
        elif alphanumeric:
            raise ValueError(
                f"The {role} address '{value}' is neither a number nor an alphanumeric sender of at most "
                f"{MAX_ALPHANUMERIC} GSM characters. Use digits only (e.g. 4915112345678) or a short name."
            )
        else:
            raise ValueError(
                f"The {role} address '{value}' is not a number: it contains "
                f"{_non_digits(digits)}. Use digits only in international form, e.g. 4915112345678."
            )
    ton = Ton(int(ton))
    npi = Npi(int(npi)) if npi is not None else (Npi.UNKNOWN if ton is Ton.ALPHANUMERIC else Npi.ISDN)
    if ton in NUMERIC_TONS:
        if ton is Ton.INTERNATIONAL:
            text = digits
        if not text.isdigit():
            raise ValueError(
                f"The {role} address '{value}' has TON {ton.name} but contains {_non_digits(text)}. "
                "Remove spaces, dashes and brackets: digits only, e.g. 4915112345678."
            )
        if len(text) > MAX_ADDRESS:
            raise ValueError(f"The {role} address '{value}' has {len(text)} digits; SMPP allows at most {MAX_ADDRESS}.")
    elif ton is Ton.ALPHANUMERIC:
        if len(text) > MAX_ALPHANUMERIC:
            raise ValueError(
                f"The alphanumeric {role} '{value}' has {len(text)} characters; at most {MAX_ALPHANUMERIC} fit."
            )
    elif len(text) > MAX_ADDRESS:
        raise ValueError(f"The {role} address '{value}' has {len(text)} characters; at most {MAX_ADDRESS} fit.")
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"The {role} address '{value}' has characters an SMPP address cannot carry.") from None
    return text, int(ton), int(npi)


def relative_validity(validity: timedelta) -> str:
    """SMPP 3.4 relative time ``YYMMDDhhmmss000R`` for a validity period."""
    seconds = int(validity.total_seconds())
    if seconds <= 0:
        raise ValueError(f"Validity must be positive, got {validity}.")
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    years, days = divmod(days, 365)
    months, day = divmod(days, 30)
    if years > 99:
        raise ValueError(f"Validity {validity} is longer than SMPP's 99 years.")
    return f"{years:02d}{months:02d}{day:02d}{hour:02d}{minute:02d}{second:02d}000R"


def _non_digits(text: str) -> str:
    found = sorted({char for char in text if not char.isdigit()})
    return ", ".join(repr(char) for char in found[:5]) or "no digits"
