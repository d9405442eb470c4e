"""Pure SMPP helpers: codings, splitting, UDH/SAR, reassembly, receipts, statuses, addresses."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from SmppLibrary.addressing import Ton, address, relative_validity
from SmppLibrary.codec import (
    GSM_BASIC,
    Coding,
    Concat,
    Reassembler,
    SplitMethod,
    build_udh,
    choose_coding,
    decode_text,
    describe_status,
    encode_text,
    format_receipt,
    gsm7_decode,
    gsm7_encode,
    message_ids_match,
    parse_coding,
    parse_receipt,
    parse_udh,
    reassemble_text,
    receipt_state,
    sar_tlvs,
    split_text,
    status_code,
    status_name,
    text_units,
)

EMOJI = "\U0001f600"


@pytest.mark.parametrize(
    ("text", "coding"),
    [
        ("Hello world", Coding.GSM7),
        ("Grüße, 5€ [ok] {x} ~^|\\", Coding.GSM7),
        ("Привет", Coding.UCS2),
        (f"hi {EMOJI}", Coding.UCS2),
        ("naïve", Coding.UCS2),  # ï is not in GSM 03.38
        ("", Coding.GSM7),
    ],
)
def test_choose_coding(text: str, coding: Coding) -> None:
    assert choose_coding(text) is coding
    assert parse_coding("auto", text) is coding


def test_parse_coding_names_and_errors() -> None:
    assert parse_coding("GSM7") is Coding.GSM7
    assert parse_coding("ucs2") is Coding.UCS2
    assert parse_coding("Latin1") is Coding.LATIN1
    with pytest.raises(ValueError, match="Unknown coding 'utf8'"):
        parse_coding("utf8")


def test_gsm7_round_trip_of_the_whole_alphabet() -> None:
    text = "".join(char for char in GSM_BASIC if char != "\x1b") + "€[]{}~^|\\\f"
    assert gsm7_decode(gsm7_encode(text)) == text
    assert gsm7_encode("§") == b"\x5f"  # smpplib's table has a backtick here
    assert gsm7_encode("¿") == b"\x60"
    assert gsm7_encode("€") == b"\x1b\x65"
    assert gsm7_encode("@") == b"\x00"


def test_gsm7_rejects_characters_outside_the_alphabet() -> None:
    with pytest.raises(ValueError, match=r"U\+0416.*coding=ucs2"):
        gsm7_encode("abЖ")


def test_ucs2_encodes_emoji_as_a_surrogate_pair() -> None:
    assert encode_text(EMOJI, Coding.UCS2) == b"\xd8\x3d\xde\x00"
    assert decode_text(b"\xd8\x3d\xde\x00", 0x08) == EMOJI
    assert text_units(EMOJI, Coding.UCS2) == 2


@pytest.mark.parametrize(
    ("coding", "char", "single", "part"),
    [(Coding.GSM7, "a", 160, 153), (Coding.UCS2, "ж", 70, 67), (Coding.LATIN1, "é", 140, 134)],
)
def test_split_sizes_at_the_limits(coding: Coding, char: str, single: int, part: int) -> None:
    assert split_text(char * single, coding) == [char * single]
    two = split_text(char * (single + 1), coding)
    assert [len(p) for p in two] == [part, single + 1 - part]
    three = split_text(char * (2 * part + 1), coding)
    assert [len(p) for p in three] == [part, part, 1]
    assert split_text(char * (2 * part), coding) == [char * part] * 2


def test_gsm_escape_at_the_part_boundary_moves_whole_to_the_next_part() -> None:
    text = "a" * 152 + "€" + "b" * 10  # € would take septets 153 and 154
    parts = split_text(text, Coding.GSM7)
    assert parts == ["a" * 152, "€" + "b" * 10]
    assert all(text_units(part, Coding.GSM7) <= 153 for part in parts)
    assert "".join(parts) == text


def test_escape_that_just_fits_stays_in_the_part() -> None:
    parts = split_text("a" * 151 + "€" + "b" * 10, Coding.GSM7)
    assert parts[0] == "a" * 151 + "€"


def test_single_message_counts_escape_septets() -> None:
    assert len(split_text("€" * 80, Coding.GSM7)) == 1  # 160 septets
    assert len(split_text("€" * 81, Coding.GSM7)) == 2  # 162 septets


def test_emoji_at_the_ucs2_boundary_moves_whole_to_the_next_part() -> None:
    text = "a" * 66 + EMOJI + "b" * 10  # the surrogate pair would take units 67 and 68
    parts = split_text(text, Coding.UCS2)
    assert parts == ["a" * 66, EMOJI + "b" * 10]
    for part in parts:
        assert len(encode_text(part, Coding.UCS2)) <= 134
        part.encode("utf-16-be").decode("utf-16-be")  # no lone surrogate


def test_payload_never_splits() -> None:
    assert split_text("x" * 1000, Coding.GSM7, SplitMethod.PAYLOAD) == ["x" * 1000]
    assert split_text("x" * 1000, Coding.GSM7, "payload") == ["x" * 1000]


def test_too_many_parts_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 255"):
        split_text("a" * 153 * 256, Coding.GSM7)


def test_udh_build_and_parse() -> None:
    udh = build_udh(0xAB, 3, 2)
    assert udh == b"\x05\x00\x03\xab\x03\x02"
    concat, body = parse_udh(udh + b"hello")
    assert concat == Concat(0xAB, 3, 2, "udh")
    assert body == b"hello"
    concat16, body16 = parse_udh(b"\x06\x08\x04\x12\x34\x02\x01xy")
    assert concat16 == Concat(0x1234, 2, 1, "udh16")
    assert body16 == b"xy"
    other_ie, body_other = parse_udh(b"\x04\x05\x02\x0b\x84hi")  # port addressing only
    assert other_ie is None
    assert body_other == b"hi"
    with pytest.raises(ValueError, match="UDH length"):
        parse_udh(b"\x09\x00")


def test_sar_tlvs() -> None:
    assert sar_tlvs(0x1234, 3, 1) == {"sar_msg_ref_num": 0x1234, "sar_total_segments": 3, "sar_segment_seqnum": 1}
    with pytest.raises(ValueError):
        sar_tlvs(70000, 2, 1)


def test_reassembly_out_of_order_udh_and_sar() -> None:
    text = "x" * 150 + "€" + "y" * 200
    parts = split_text(text, Coding.GSM7)
    encoded = [encode_text(part, Coding.GSM7) for part in parts]
    udh_parts = [(Concat(7, len(parts), n, "udh"), data, 0) for n, data in enumerate(encoded, start=1)]
    sar_parts = [(Concat(900, len(parts), n, "sar"), data, 0) for n, data in enumerate(encoded, start=1)]
    shuffled = [udh_parts[2], sar_parts[1], udh_parts[0], sar_parts[2], sar_parts[0], udh_parts[1]]
    messages = reassemble_text(shuffled)
    assert [(m[0], m[2]) for m in messages] == [(text, 3), (text, 3)]


def test_reassembly_joins_octets_before_decoding() -> None:
    data = encode_text("ab€cd", Coding.GSM7)  # 61 62 1b 65 63 64: cut inside the escape pair
    reassembler = Reassembler()
    assert reassembler.add(("a", "b"), Concat(1, 2, 2, "udh"), data[3:], 0) is None
    assert reassembler.incomplete == 1
    joined = reassembler.add(("a", "b"), Concat(1, 2, 1, "udh"), data[:3], 0)
    assert joined is not None
    assert decode_text(joined, 0) == "ab€cd"
    assert reassembler.incomplete == 0


def test_receipt_format_and_parse_round_trip() -> None:
    submitted = datetime(2024, 5, 17, 9, 30)
    done = datetime(2024, 5, 17, 9, 31)
    text = format_receipt("ABC123", "delivered", submitted=submitted, done=done, text="Hello there, how are you")
    assert text == (
        "id:ABC123 sub:001 dlvrd:001 submit date:2405170930 done date:2405170931 stat:DELIVRD err:000 "
        "text:Hello there, how are"
    )
    fields = parse_receipt(text)
    assert fields == {
        "id": "ABC123",
        "sub": "001",
        "dlvrd": "001",
        "submit_date": "2405170930",
        "done_date": "2405170931",
        "stat": "DELIVRD",
        "err": "000",
        "text": "Hello there, how are",
    }
    failed = parse_receipt(format_receipt("x", "UNDELIV", error=34, submitted=submitted, done=done))
    assert failed is not None
    assert (failed["stat"], failed["err"], failed["dlvrd"]) == ("UNDELIV", "034", "000")


def test_receipt_parse_variants() -> None:
    jasmin = (
        "id:1f0e2c4a-9b1d-4c1e-8a7b-3c2d1e0f9a8b sub:001 dlvrd:001 submit date:2405170930 "
        "done date:2405170931 stat:DELIVRD err:000 Text:hi"
    )
    fields = parse_receipt(jasmin)
    assert fields is not None
    assert fields["id"] == "1f0e2c4a-9b1d-4c1e-8a7b-3c2d1e0f9a8b"
    assert fields["text"] == "hi"
    assert parse_receipt("id:5 stat:expired") == {"id": "5", "stat": "EXPIRED"}
    assert parse_receipt("Hello, see you at 5") is None


@pytest.mark.parametrize(
    ("submitted", "receipted", "same"),
    [
        ("1F0E2C4A-9B1D-4C1E-8A7B-3C2D1E0F9A8B", "1f0e2c4a-9b1d-4c1e-8a7b-3c2d1e0f9a8b", True),
        ("0A1B", "2587", True),  # hex in submit_sm_resp, decimal in the receipt
        ("2587", "0a1b", True),
        ("000123", "123", True),
        (" abc ", "ABC", True),
        ("1f0e2c4a-9b1d-4c1e-8a7b-3c2d1e0f9a8b", "1f0e2c4a-9b1d-4c1e-8a7b-3c2d1e0f9a8c", False),
        ("10", "11", False),
        ("", "", False),
    ],
)
def test_message_ids_match(submitted: str, receipted: str, same: bool) -> None:
    assert message_ids_match(submitted, receipted) is same


def test_status_names() -> None:
    assert status_name(0x0E) == "ESME_RINVPASWD"
    assert status_name(0x0D) == "ESME_RBINDFAIL"
    assert status_name(0x58) == "ESME_RTHROTTLED"
    assert status_name(0x14) == "ESME_RMSGQFUL"
    assert status_name(0x0B) == "ESME_RINVDSTADR"
    assert status_name(0x08) == "ESME_RSYSERR"
    assert status_name(0x0F) == "ESME_RINVSYSID"
    assert status_name(0x400) == "0x00000400"
    assert describe_status(0x0E) == "ESME_RINVPASWD (0x0000000E, Invalid Password)"
    assert "vendor-specific" in describe_status(0x401)
    assert status_code("esme_rthrottled") == 0x58
    assert status_code("RSYSERR") == 0x08
    assert status_code("0x45") == 0x45
    assert status_code(20) == 20
    with pytest.raises(ValueError, match="Unknown SMPP status 'NOPE'"):
        status_code("NOPE")


def test_receipt_state_normalisation() -> None:
    assert receipt_state("delivrd") == "DELIVRD"
    assert receipt_state("DELIVERED") == "DELIVRD"
    assert receipt_state("5") == "UNDELIV"
    with pytest.raises(ValueError, match="Unknown delivery state 'GONE'"):
        receipt_state("GONE")


def test_addresses() -> None:
    assert address("+4915112345678", role="destination", ton=None, npi=None, alphanumeric=False) == (
        "4915112345678",
        1,
        1,
    )
    assert address("ACME", role="source", ton=None, npi=None, alphanumeric=True) == ("ACME", 5, 0)
    assert address("12345", role="source", ton=Ton.NATIONAL, npi=None, alphanumeric=True) == ("12345", 2, 1)
    with pytest.raises(ValueError, match=r"destination address '\+49 151-123' is not a number.*' ', '-'"):
        address("+49 151-123", role="destination", ton=None, npi=None, alphanumeric=False)
    with pytest.raises(ValueError, match="destination address is empty"):
        address("", role="destination", ton=None, npi=None, alphanumeric=False)
    with pytest.raises(ValueError, match="TON INTERNATIONAL but contains 'x'"):
        address("49151x", role="source", ton=Ton.INTERNATIONAL, npi=None, alphanumeric=True)
    with pytest.raises(ValueError, match="at most 20"):
        address("1" * 21, role="destination", ton=None, npi=None, alphanumeric=False)


def test_relative_validity() -> None:
    assert relative_validity(timedelta(hours=2, minutes=5)) == "000000020500000R"
    assert relative_validity(timedelta(days=45)) == "000115000000000R"
    with pytest.raises(ValueError):
        relative_validity(timedelta(0))
