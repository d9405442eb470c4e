"""SipLibrary's checks of URIs, numbers, digits and headers, its SIP parsing and its MOS/WAV arithmetic."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from SipLibrary.addressing import (
    check_digits,
    check_headers,
    check_user,
    destination_uri,
    offered_codecs,
    parse_headers,
    parse_sip_uri,
    server_uri,
    split_name_addr,
    user_of,
)
from SipLibrary.quality import mos, r_factor, wav_info

INVITE = (
    "INVITE sip:bob@127.0.0.1:5062 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\n"
    'f: "Front \\"Desk\\"" <sip:+4930111@example.com>;tag=abc\r\n'
    "To: <sip:bob@127.0.0.1>\r\n"
    "X-Folded: one\r\n two\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\n"
    "Content-Type: application/sdp\r\n\r\n"
    "v=0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
)


@pytest.mark.parametrize(
    ("uri", "user", "host", "port"),
    [
        ("sip:bob@127.0.0.1:5062", "bob", "127.0.0.1", 5062),
        ("<sip:+4930123@example.com;user=phone>", "+4930123", "example.com", None),
        ("sip:127.0.0.1:5060;transport=tcp", "", "127.0.0.1", 5060),
        ("sip:alice@[::1]:5070", "alice", "[::1]", 5070),
        ("sip:%2A100%23@pbx.example", "%2A100%23", "pbx.example", None),
    ],
)
def test_valid_uris_are_split(uri: str, user: str, host: str, port: int | None) -> None:
    parsed = parse_sip_uri(uri)
    assert (parsed.user, parsed.host, parsed.port) == (user, host, port)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "it is empty"),
        ("sip:", "nothing after 'sip:'"),
        ("sip:@127.0.0.1", "user part before '@' is empty"),
        ("sip:bob@", "host is missing"),
        ("sip:bob@:5060", "host is missing"),
        ("bob@127.0.0.1", "did you mean 'sip:bob@127.0.0.1'?"),
        ("sip:bob @127.0.0.1", "white space"),
        ("sip:bob@127.0.0.1:99999", "port 99999 is outside 1-65535"),
        ("sips:bob@example.com", "sips: needs TLS"),
        ("tel:+4930123", "give the number alone"),
        ("sip:bob@exa_mple.com", "does not follow sip:user@host"),
        ("hello", "neither a SIP URI"),
    ],
)
def test_malformed_uris_name_the_problem_and_the_fix(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match="is not valid") as error:
        parse_sip_uri(value, what="Destination")
    assert reason in str(error.value)
    assert "sip:bob@127.0.0.1:5062" in str(error.value)  # shows the right form


def test_numbers_are_dialled_at_the_phones_domain() -> None:
    assert destination_uri("+4930123", domain="example.com").text == "sip:+4930123@example.com"
    assert destination_uri("*100#", domain="pbx:5060").text == "sip:*100%23@pbx:5060"
    assert destination_uri("100", domain="pbx", transport="tcp").text == "sip:100@pbx;transport=tcp"


def test_a_number_without_a_domain_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Number '4930123' needs a domain.*domain="):
        destination_uri("4930123", domain=None)


def test_servers_take_host_port_or_uri_and_no_user() -> None:
    assert server_uri("127.0.0.1:5060", what="Registrar").text == "sip:127.0.0.1:5060"
    assert server_uri("sip:proxy.example", what="Registrar", transport="tcp").text == "sip:proxy.example;transport=tcp"
    with pytest.raises(ValueError, match="should name a server"):
        server_uri("sip:bob@proxy", what="Registrar")


def test_users_digits_and_headers_are_checked() -> None:
    assert check_user(" +4930123 ") == "+4930123"
    for bad in ("", "a b", "bob@host"):
        with pytest.raises(ValueError, match="is not valid"):
            check_user(bad)
    assert check_digits("12ab*#") == "12AB*#"
    with pytest.raises(ValueError, match=r"DTMF digits '12x' are not valid: use 0-9, \*, # and A-D"):
        check_digits("12x")
    assert check_headers({"X-Test": 7}) == {"X-Test": "7"}
    with pytest.raises(ValueError, match="header name 'X Test'"):
        check_headers({"X Test": "a"})
    with pytest.raises(ValueError, match="must be one line"):
        check_headers({"X-Test": "a\r\nVia: evil"})


def test_raw_sip_is_read_with_compact_folded_and_repeated_headers() -> None:
    headers = parse_headers(INVITE)
    assert headers["From"].startswith('"Front \\"Desk\\"" <sip:+4930111@example.com>')
    assert headers["X-Folded"] == "one two"
    assert headers["Via"].count("SIP/2.0/UDP") == 2
    assert offered_codecs(INVITE) == ["PCMU", "PCMA", "telephone-event"]


def test_name_addr_and_user_parts() -> None:
    assert split_name_addr('"Front \\"Desk\\"" <sip:+4930111@example.com>;tag=abc') == (
        'Front "Desk"',
        "sip:+4930111@example.com",
    )
    assert split_name_addr("Alice <sip:alice@h>") == ("Alice", "sip:alice@h")
    assert split_name_addr("sip:bob@h;tag=1") == ("", "sip:bob@h")
    assert user_of("<sip:*100%23@pbx>") == "*100#"
    assert user_of("sip:pbx.example") == ""


def test_mos_follows_the_simplified_e_model() -> None:
    assert r_factor(0, 0) == pytest.approx(93.2 - 10 / 40)
    assert mos(0, 0) == 4.4
    assert mos(1, 40) < mos(0, 40) < mos(0, 0)
    assert r_factor(0, 100, 50) == pytest.approx(93.2 - (260 - 120) / 10)  # effective latency past 160 ms
    assert mos(50, 0) == 1.0
    assert 4.0 < mos(2, 20, 50) < mos(0, 20, 50)


def test_wav_info_measures_length_and_loudness(tone_wav: Path, tmp_path: Path) -> None:
    info = wav_info(tone_wav)
    assert info["duration"] == 1.5
    assert info["sample_rate"] == 8000
    assert -12 < info["rms_dbfs"] < -6  # a sine of amplitude 12000 is about -8.7 dBFS
    silent = tmp_path / "silent.wav"
    import wave

    with wave.open(str(silent), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\0\0" * 800)
    assert wav_info(silent)["rms_dbfs"] == -math.inf
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(ValueError, match="is not a readable WAV file"):
        wav_info(tmp_path / "text.wav")
    with pytest.raises(ValueError, match="does not exist"):
        wav_info(tmp_path / "missing.wav")


def test_dtmf_tone_wav_holds_each_digit_as_two_tones(tmp_path: Path) -> None:
    import wave

    from SipLibrary.tones import write_dtmf_wav

    path = write_dtmf_wav("4711", tmp_path / "tones.wav", tone_ms=100, gap_ms=100, lead_ms=0)
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
        assert wav.getnframes() == 4 * 1600
    with pytest.raises(ValueError, match="must be 0-9"):
        write_dtmf_wav("12x", tmp_path / "bad.wav")


@pytest.mark.parametrize(
    ("first_line", "address"),
    [
        ("INVITE sip:1003@127.0.0.1:43846;ob SIP/2.0\r\nVia: x", "127.0.0.1:43846"),
        ("INVITE sip:carol@example.net SIP/2.0", "example.net:5060"),
        ("INVITE sips:[::1]:5061;transport=tls SIP/2.0", "[::1]:5061"),
        ("SIP/2.0 200 OK", ""),
    ],
)
def test_request_uri_address_names_the_phone_a_call_was_sent_to(first_line: str, address: str) -> None:
    from SipLibrary.phone import request_uri_address

    assert request_uri_address(first_line) == address
