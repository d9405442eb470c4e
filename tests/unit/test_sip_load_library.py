"""Unit tests of SipLoadLibrary: statistics parsing and command lines without SIPp; real SIPp runs when installed.

The runs through Kamailio need the voice real stack up (``python -m realstack.voice up``); they are skipped
with the reason otherwise.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from assertionengine import AssertionOperator
from SipLoadLibrary import SipLoadLibrary, SippError, SippTargetError, SippTimeoutError
from SipLoadLibrary.keywords.results import pick
from SipLoadLibrary.process import SippSpec, scenario_arguments
from SipLoadLibrary.stats import duration_ms, parse_rtt, parse_stat_rows, percentiles, summarize

from realstack.voice import daemons
from realstack.voice.settings import Paths, VoiceSettings, load_state

SIPP = shutil.which("sipp")
needs_sipp = pytest.mark.skipif(SIPP is None, reason="SIPp is not installed (Debian package sip-tester)")
EQ = AssertionOperator["=="]

# Two rows as SIPp 3.6.1 writes them with -trace_stat -fd 1 (columns shortened to the ones the parser reads, plus
# a few it must skip); the timestamps hold tabs, the rows end with ';'.
HEADER = (
    "StartTime;LastResetTime;CurrentTime;ElapsedTime(P);ElapsedTime(C);TargetRate;CallRate(P);CallRate(C);"
    "TotalCallCreated;CurrentCall;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);"
    "FailedMaxUDPRetrans(C);FailedUnexpectedMessage(C);FailedTimeoutOnRecv(C);Retransmissions(P);Retransmissions(C);"
    "ResponseTimesetup(P);ResponseTimesetup(C);ResponseTimesetupStDev(P);ResponseTimesetupStDev(C);"
    "CallLength(P);CallLength(C);ResponseTimeRepartitionsetup;ResponseTimeRepartitionsetup_<1;"
)
ROW_1 = (
    "2026-11-21\t06:44:29.276381\t1795243469.276381;2026-11-21\t06:44:30.277\t1795243470.277;"
    "2026-11-21\t06:44:30.277\t1795243470.277;00:00:01;00:00:01;500;499.5;499.5;500;12;488;488;0;0;0;0;0;3;3;"
    "00:00:00:004000;00:00:00:004000;00:00:00:001000;00:00:00:001000;00:00:00:006000;00:00:00:006000;;400;"
)
ROW_2 = (
    "2026-11-21\t06:44:29.276381\t1795243469.276381;2026-11-21\t06:44:31.28\t1795243471.28;"
    "2026-11-21\t06:44:31.28\t1795243471.28;00:00:01;00:00:02;500;501.2;500.3;1000;0;512;998;2;2;0;1;1;4;7;"
    "00:00:00:009000;00:00:00:006500;00:00:00:002000;00:00:00:001500;00:00:00:007000;00:00:00:006500;;800;"
)
RTT = "Date_ms;response_time_ms;rtd_no\n52.001;4;setup\n104.001;0;setup\n152.001;8;setup\n204.001;4;setup\n"


# --- statistics, on fixture text ------------------------------------------------------------------------------


def test_stat_rows_are_keyed_by_the_header_with_tabs_kept_inside_the_timestamps() -> None:
    rows = parse_stat_rows(f"{HEADER}\n{ROW_1}\n{ROW_2}\n")

    assert len(rows) == 2
    assert rows[1]["SuccessfulCall(C)"] == "998"
    assert rows[1]["StartTime"] == "2026-11-21\t06:44:29.276381\t1795243469.276381"


def test_the_last_row_gives_the_run_figures() -> None:
    stats = summarize(parse_stat_rows(f"{HEADER}\n{ROW_1}\n{ROW_2}\n"), parse_rtt(RTT)).as_dict()

    assert stats["calls_created"] == 1000
    assert (stats["successful"], stats["failed"], stats["retransmissions"], stats["current_calls"]) == (998, 2, 7, 0)
    assert stats["calls_per_second"] == 500.3
    assert stats["peak_calls_per_second"] == 501.2
    assert stats["successful_per_second"] == 499.0
    assert stats["elapsed_s"] == 2.0
    assert stats["target_rate"] == 500.0
    assert stats["failed_by_reason"] == {"UnexpectedMessage": 1, "TimeoutOnRecv": 1}
    assert stats["call_length_ms"] == 6.5


def test_response_times_carry_sipps_mean_and_the_percentiles_of_the_rtt_file() -> None:
    stats = summarize(parse_stat_rows(f"{HEADER}\n{ROW_1}\n{ROW_2}\n"), parse_rtt(RTT)).as_dict()

    assert stats["response_times_ms"] == {
        "setup": {"mean": 6.5, "stdev": 1.5, "count": 4, "p50": 4.0, "p95": 8.0, "p99": 8.0, "max": 8.0}
    }


def test_an_empty_or_header_only_file_gives_zero_figures() -> None:
    assert parse_stat_rows("") == []
    assert parse_stat_rows(HEADER + "\n") == []
    assert summarize([]).as_dict()["calls_created"] == 0


def test_a_row_sipp_is_still_writing_is_left_out() -> None:
    rows = parse_stat_rows(f"{HEADER}\n{ROW_1}\n2026-11-21\t06:44:31;2026")

    assert len(rows) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:03", 3000.0),
        ("01:02:03", 3723000.0),
        ("00:00:00:006000", 6.0),
        ("00:00:01:000500", 1000.5),
        ("", None),
        ("n/a", None),
    ],
)
def test_sipp_durations_read_as_milliseconds(text: str, expected: float | None) -> None:
    assert duration_ms(text) == expected


def test_percentiles_use_the_nearest_rank() -> None:
    assert percentiles(range(1, 101)) == {"count": 100, "p50": 50, "p95": 95, "p99": 99, "max": 100}
    assert percentiles([]) == {}


def test_a_dotted_key_reaches_into_the_result_and_a_wrong_one_lists_the_keys() -> None:
    result = {"failed": 0, "response_times_ms": {"setup": {"p95": 4.0}}}

    assert pick(result, "response_times_ms.setup.p95") == 4.0
    with pytest.raises(ValueError, match=r"no 'response_times_ms.invite'\. Keys of response_times_ms: setup"):
        pick(result, "response_times_ms.invite.p95")


# --- command lines -------------------------------------------------------------------------------------------


def uac_spec(**changes: object) -> SippSpec:
    values: dict[str, object] = {
        "alias": "uac1",
        "role": "uac",
        "scenario": "uac",
        "host": "127.0.0.1",
        "port": 15080,
        "control_port": 18880,
        "media_port": 16100,
        "target": "127.0.0.1:5060",
        "service": "1020",
        "rate": 20.0,
        "count": 60,
        "auth_user": "1001",
        "auth_password": "pw1001",
        "caller": "1001",
    }
    values.update(changes)
    return SippSpec(**values)  # type: ignore[arg-type]


def test_a_uac_command_names_target_scenario_ports_rate_count_and_credentials() -> None:
    command = uac_spec().command("sipp")
    joined = " ".join(command)

    assert command[:2] == ["sipp", "127.0.0.1:5060"]
    assert command[command.index("-sf") + 1].endswith("SipLoadLibrary/scenarios/uac.xml")
    for part in (
        "-s 1020 -key caller 1001",
        "-i 127.0.0.1 -p 15080 -mi 127.0.0.1 -mp 16100",
        "-cp 18880 -nostdin",
        "-trace_stat -stf stats.csv -fd 1",
        "-r 20 -rp 1000 -m 60",
        "-au 1001 -ap pw1001",
        "-trace_rtt -rtt_freq 1",
    ):
        assert part in joined


def test_the_logged_command_masks_the_digest_password() -> None:
    masked = uac_spec().masked("sipp")

    assert "-ap ***" in masked
    assert "pw1001" not in masked


def test_a_uas_command_has_no_target_and_no_rate() -> None:
    command = SippSpec("uas1", "uas", "uas", "127.0.0.1", 15070, 18870, 16000).command("sipp")

    assert command[1] == "-sf"
    assert "-r" not in command
    assert "-m" not in command


def test_scenarios_are_the_librarys_a_file_or_a_sipp_built_in(tmp_path: Path) -> None:
    own = tmp_path / "mine.xml"
    own.write_text("<scenario/>", encoding="utf-8")

    assert scenario_arguments("sipp:uac") == ["-sn", "uac"]
    assert scenario_arguments(str(own)) == ["-sf", str(own)]
    assert scenario_arguments("uas_ringing")[1].endswith("uas_ringing.xml")
    with pytest.raises(ValueError, match=r"Scenario 'nope' is neither one of this library's \(uac, uas, uas_ringing\)"):
        scenario_arguments("nope")


# --- keywords that refuse bad input before SIPp starts ----------------------------------------------------------


@pytest.fixture
def library(tmp_path: Path) -> Iterator[SipLoadLibrary]:
    lib = SipLoadLibrary(output_dir=str(tmp_path / "sipp"), timeout=timedelta(seconds=20))
    try:
        yield lib
    finally:
        lib.run_keyword("Stop All SIPp", [], {})


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"rate": 0.0, "count": 1}, "rate must be a number of calls per second above 0, got 0.0"),
        ({"rate": -5.0, "count": 1}, "rate must be a number of calls per second above 0"),
        ({"count": 5, "duration": timedelta(seconds=1)}, "Give count or duration, not both"),
        ({"count": 0}, "count must be at least 1 call, got 0"),
        ({}, "Run SIPp UAC needs count= or duration="),
        ({"count": 1, "auth_user": "1001"}, "auth_user and auth_password go together"),
    ],
)
def test_bad_arguments_fail_before_sipp_starts(
    library: SipLoadLibrary, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        library.run_keyword("Run SIPp UAC", ["127.0.0.1:5060"], arguments)
    assert library.ctx.instances == {}


def test_a_target_where_nothing_listens_fails_at_once_naming_it(library: SipLoadLibrary) -> None:
    port = closed_udp_port()

    with pytest.raises(SippTargetError, match=rf"Nothing listens on UDP 127\.0\.0\.1:{port}"):
        library.run_keyword("Run SIPp UAC", [f"127.0.0.1:{port}"], {"count": 1})


def test_a_target_without_a_port_is_refused(library: SipLoadLibrary) -> None:
    with pytest.raises(ValueError, match="target must be host:port"):
        library.run_keyword("Run SIPp UAC", ["127.0.0.1"], {"count": 1})


def test_results_of_an_unknown_alias_name_the_known_ones(library: SipLoadLibrary) -> None:
    with pytest.raises(SippError, match="No SIPp instance was started yet"):
        library.run_keyword("Get SIPp Result", [], {})


# --- real SIPp on loopback ------------------------------------------------------------------------------------


def gone(pid: int | None) -> bool:
    assert pid is not None
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"


@needs_sipp
def test_uac_to_uas_direct_20_calls_per_second_for_3_seconds_without_failures(library: SipLoadLibrary) -> None:
    uas = library.run_keyword("Start SIPp UAS", ["sink"], {})
    result = library.run_keyword("Run SIPp UAC", [uas], {"rate": 20.0, "duration": timedelta(seconds=3)})

    assert result["exit_code"] == 0
    assert (result["calls_created"], result["successful"], result["failed"]) == (60, 60, 0)
    assert result["calls_per_second"] >= 18
    assert result["response_times_ms"]["setup"]["count"] == 60
    assert library.run_keyword("SIPp Result Should Be", ["failed", EQ, "0"], {}) == 0
    pids = [instance.pid for instance in library.ctx.instances.values()]

    library.run_keyword("Stop All SIPp", [], {})

    assert all(gone(pid) for pid in pids)
    assert library.run_keyword("Get SIPp Result", ["sink", "state"], {}) == "killed"


@needs_sipp
def test_a_failed_assertion_quotes_both_sides(library: SipLoadLibrary) -> None:
    uas = library.run_keyword("Start SIPp UAS", [], {})
    library.run_keyword("Run SIPp UAC", [uas], {"rate": 50.0, "count": 5})

    with pytest.raises(AssertionError, match=r"SIPp 'uac1' successful '5' \(int\) should be '4' \(int\)"):
        library.run_keyword("SIPp Result Should Be", ["successful", EQ, "4"], {})


@needs_sipp
def test_several_instances_run_at_once_on_their_own_ports(library: SipLoadLibrary) -> None:
    first = library.run_keyword("Start SIPp UAS", ["a"], {})
    second = library.run_keyword("Start SIPp UAS", ["b"], {})
    library.run_keyword("Start SIPp UAC", [first], {"alias": "to-a", "rate": 40.0, "count": 40})
    library.run_keyword("Start SIPp UAC", [second], {"alias": "to-b", "rate": 40.0, "count": 40})

    results = [library.run_keyword("Wait For SIPp", [alias], {}) for alias in ("to-a", "to-b")]

    assert [(r["successful"], r["failed"]) for r in results] == [(40, 0), (40, 0)]
    specs = [instance.spec for instance in library.ctx.instances.values()]
    ports = [port for spec in specs for port in (spec.port, spec.control_port, spec.media_port)]
    assert len(set(ports)) == len(ports)


@needs_sipp
def test_stop_all_kills_a_running_load_by_pid_even_after_a_failed_wait(library: SipLoadLibrary) -> None:
    uas = library.run_keyword("Start SIPp UAS", [], {})
    alias = library.run_keyword("Start SIPp UAC", [uas], {"rate": 10.0})  # open-ended
    with pytest.raises(SippTimeoutError, match=rf"SIPp '{alias}' did not end within 0.5 s \(still running"):
        library.run_keyword("Wait For SIPp", [alias], {"timeout": timedelta(milliseconds=500)})
    pids = [instance.pid for instance in library.ctx.instances.values()]
    assert not any(gone(pid) for pid in pids)

    library.run_keyword("Stop All SIPp", [], {})

    assert all(gone(pid) for pid in pids)


@needs_sipp
def test_the_rate_of_a_running_uac_changes_through_its_control_port(library: SipLoadLibrary) -> None:
    uas = library.run_keyword("Start SIPp UAS", [], {})
    alias = library.run_keyword("Start SIPp UAC", [uas], {"rate": 5.0})

    library.run_keyword("Set SIPp Rate", [40.0], {"alias": alias})

    library.run_keyword("Get SIPp Result", [alias, "target_rate", EQ, "40"], {"timeout": timedelta(seconds=5)})
    result = library.run_keyword("Stop SIPp", [alias], {})
    assert result["state"] in ("stopped", "killed")
    assert result["failed"] == 0


@needs_sipp
def test_a_port_in_use_is_refused_naming_it(library: SipLoadLibrary) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        with pytest.raises(ValueError, match=rf"UDP port 127\.0\.0\.1:{port} is already in use"):
            library.run_keyword("Start SIPp UAS", [], {"port": port})


@needs_sipp
def test_a_scenario_sipp_cannot_read_fails_with_sipps_message(library: SipLoadLibrary, tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text("<scenario><recv request='INVITE'></scenario>", encoding="utf-8")

    with pytest.raises(
        SippError, match=r"(?s)SIPp 'uas1' exited at once \(exit 1\):\n.*Unable to load or parse '.*broken.xml'"
    ):
        library.run_keyword("Start SIPp UAS", [], {"scenario": str(broken)})


# --- through Kamailio (the voice real stack) --------------------------------------------------------------------


@pytest.fixture
def kamailio() -> Iterator[tuple[Paths, VoiceSettings]]:
    if SIPP is None:
        pytest.skip("SIPp is not installed (Debian package sip-tester)")
    paths = Paths()
    settings = load_state(paths)
    if settings is None or daemons.proxy_version(paths, settings.proxies[0]) is None:
        pytest.skip("the voice real stack does not run: `python -m realstack.voice up`")
    yield paths, settings


def test_uac_through_kamailio_and_rtpengine_with_digest_auth_has_no_failed_calls(
    library: SipLoadLibrary, kamailio: tuple[Paths, VoiceSettings]
) -> None:
    paths, settings = kamailio
    proxy = settings.proxies[0]
    users = list(settings.routing.users.items())
    (caller, password), (callee, _) = users[0], users[-1]
    uas = library.run_keyword("Start SIPp UAS", ["kamailio-sink"], {})
    contact = ["location", f"s:{callee}", f"sip:{callee}@{uas}", "0", "1.0", "s:", "0", "0", "0"]
    code, output = daemons.kamcmd(paths, proxy, "ul.add", *contact)
    assert code == 0, output
    try:
        result = library.run_keyword(
            "Run SIPp UAC",
            [f"127.0.0.1:{proxy.sip_port}", callee],
            {"rate": 50.0, "duration": timedelta(seconds=3), "auth_user": caller, "auth_password": password},
        )
    finally:
        daemons.kamcmd(paths, proxy, "ul.rm", "location", f"s:{callee}")

    assert (result["successful"], result["failed"]) == (150, 0), result
    assert result["calls_per_second"] >= 45


def test_the_library_has_documentation_for_every_keyword() -> None:
    names = SipLoadLibrary().get_keyword_names()

    assert sorted(names) == sorted(
        [
            "Start SIPp UAS",
            "Start SIPp UAC",
            "Run SIPp UAC",
            "Wait For SIPp",
            "Stop SIPp",
            "Stop All SIPp",
            "Set SIPp Rate",
            "Get SIPp Result",
            "SIPp Result Should Be",
        ]
    )
    library = SipLoadLibrary()
    for name in names:
        assert "|" in library.get_keyword_documentation(name), name


def test_sipp_is_found_or_its_absence_names_the_package(tmp_path: Path) -> None:
    lib = SipLoadLibrary(sipp="no-such-sipp-binary", output_dir=str(tmp_path))
    with pytest.raises(SippError, match=r"apt-get install sip-tester"):
        lib.ctx.sipp()
