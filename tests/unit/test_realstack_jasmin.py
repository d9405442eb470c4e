"""Unit tests of realstack.jasmin: the parts that need no Jasmin (config, jCli client, configure's sequence)."""

from __future__ import annotations

import configparser
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from realstack.jasmin import daemon, processes, provision
from realstack.jasmin.__main__ import parse_args, settings_from
from realstack.jasmin.errors import JCliConnectionError, JCliError, RealStackError
from realstack.jasmin.jcli import JCli, clean, strip_telnet
from realstack.jasmin.settings import (
    Account,
    GatewaySettings,
    JasminSettings,
    Paths,
    from_variables,
    render_config,
)

# --- jasmin.cfg from the template ------------------------------------------------------------------------------


def rendered(settings: JasminSettings, root: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_string(render_config(settings, Paths(root=root)))
    return parser


def test_config_binds_every_listener_to_loopback_on_the_given_ports(tmp_path: Path) -> None:
    cfg = rendered(JasminSettings(smpp_port=12775, http_port=11401, jcli_port=18990), tmp_path)

    assert (cfg["smpp-server"]["bind"], cfg["smpp-server"]["port"]) == ("127.0.0.1", "12775")
    assert (cfg["http-api"]["bind"], cfg["http-api"]["port"]) == ("127.0.0.1", "11401")
    assert (cfg["jcli"]["bind"], cfg["jcli"]["port"]) == ("127.0.0.1", "18990")
    for section in ("smpp-server-pb", "client-management", "router"):
        assert cfg[section]["bind"] == "127.0.0.1", section


def test_config_has_the_dlr_settings_that_keep_receipts_fast(tmp_path: Path) -> None:
    cfg = rendered(JasminSettings(), tmp_path)

    assert cfg["dlr"]["dlr_lookup_retry_delay"] == "1"
    assert cfg["dlr-thrower"]["dlr_pdu"] == "deliver_sm"


def test_config_keeps_every_path_under_realstack(tmp_path: Path) -> None:
    cfg = rendered(JasminSettings(amqp_port=5673, redis_port=6390), tmp_path)
    state = tmp_path / ".realstack" / "jasmin"

    assert cfg["amqp-broker"]["spec"] == str(state / "amqp0-9-1.xml")
    assert cfg["client-management"]["store_path"] == str(state / "etc" / "jasmin" / "store")
    assert cfg["router"]["store_path"] == str(state / "etc" / "jasmin" / "store")
    assert (cfg["amqp-broker"]["port"], cfg["redis-client"]["port"]) == ("5673", "6390")


def test_config_stores_the_jcli_password_as_jasmins_md5_hex(tmp_path: Path) -> None:
    cfg = rendered(JasminSettings(), tmp_path)

    assert cfg["jcli"]["admin_username"] == "jcliadmin"
    assert cfg["jcli"]["admin_password"] == "79e9b0aa3f3e7c53e916f7ac47439bcb"  # Jasmin's default for jclipwd


def test_an_unknown_placeholder_in_the_template_is_named(tmp_path: Path) -> None:
    with pytest.raises(RealStackError, match="unknown placeholder: 'nope'"):
        render_config(JasminSettings(), Paths(root=tmp_path), template="[x]\ny = ${nope}\n")


LAB_STYLE_VARIABLES = {
    "SMPP_PORT": 3775,
    "SMS_HTTP_URL": "http://127.0.0.1:3401",
    "SMPP_ACCOUNTS": [
        {"system_id": "acme0", "password": "acmepw0", "numbers": "25410"},
        {"system_id": "acme1", "password": "acmepw1", "numbers": 25411},
    ],
    "SMPP_THROTTLED_SYSTEM_ID": "slowco",
    "SMPP_THROTTLED_PASSWORD": "slowpw1",
    "SMPP_THROTTLED_RATE": 2,
    "SMS_OUTAGE_PREFIX": "999",
    "LAB_CARRIER_SMPP_PORT": "3776",
    "LAB_OUTAGE_CARRIER_SMPP_PORT": 3786,
    "LAB_CARRIER_SYSTEM_ID": "gateway",
    "LAB_CARRIER_PASSWORD": "gwpass1",
    "REALSTACK_JASMIN_JCLI_PORT": 3990,
    "UNRELATED": "ignored",
}


def test_the_suites_variables_feed_the_settings() -> None:
    jasmin, gateway = from_variables(LAB_STYLE_VARIABLES)

    assert (jasmin.smpp_port, jasmin.http_port, jasmin.jcli_port) == (3775, 3401, 3990)
    assert gateway.accounts == (
        Account("acme0", "acmepw0", numbers="25410"),
        Account("acme1", "acmepw1", numbers="25411"),
        Account("slowco", "slowpw1", throughput=2.0),
    )
    assert (gateway.carrier_port, gateway.outage_port, gateway.outage_prefix) == (3776, 3786, "999")
    assert (gateway.carrier_username, gateway.carrier_password) == ("gateway", "gwpass1")
    assert gateway.validate() is gateway


def test_options_win_over_the_variables_file(tmp_path: Path) -> None:
    variables = tmp_path / "vars.yaml"
    variables.write_text("SMPP_PORT: 3775\nLAB_CARRIER_SMPP_PORT: 3776\n", encoding="utf-8")
    options = ["configure", "--variables", str(variables), "--carrier-port", "4776", "--username", "solo"]

    jasmin, gateway = settings_from(parse_args([*options, "--password", "solo-pw"]))

    assert (jasmin.smpp_port, gateway.carrier_port) == (3775, 4776)
    assert gateway.accounts == (Account("solo", "solo-pw"),)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (GatewaySettings(accounts=(Account("a b", "pw"),)), "system_id 'a b' is not valid"),
        (GatewaySettings(accounts=(Account("acme", "x" * 17),)), "password of 'acme' must be 1-16"),
        (GatewaySettings(accounts=(Account("acme", "pw", numbers="25x"),)), "numbers of 'acme' must be digits"),
        (GatewaySettings(accounts=(Account("acme", "pw"), Account("acme", "pw2"))), "system_ids must differ"),
        (GatewaySettings(accounts=()), "At least one customer account"),
        (GatewaySettings(connector="c"), "connector 'c' is not valid"),
        (GatewaySettings(carrier_port=70000), "carrier_port must be a TCP port"),
        (GatewaySettings(outage_port=2786), "needs both its port and its number prefix"),
    ],
)
def test_invalid_gateway_settings_are_refused_with_the_fix(settings: GatewaySettings, message: str) -> None:
    with pytest.raises(RealStackError, match=message):
        settings.validate()


def test_jasmin_ports_must_differ() -> None:
    with pytest.raises(RealStackError, match="must differ"):
        JasminSettings(http_port=2775).validate()


# --- the jCli client against a fake jCli ------------------------------------------------------------------------

EOL = "\r\r\r\n"  # what jCli (Twisted insults over telnet) writes for a newline
BANNER = b"\xff\xfd\x22\xff\xfd\x1f\xff\xfd\x03\xff\xfb\x01\x1bc\x1b[4hAuthentication required." + (EOL * 2).encode()


@dataclass
class FakeJCliServer:
    """A jCli look-alike: telnet negotiation, escape codes, echo, the Enter before "Username: ", sessions."""

    replies: dict[str, str] = field(default_factory=dict)
    password: str = "jclipwd"
    received: list[str] = field(default_factory=list)
    silent: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        lines = self._lines(conn)
        for index in range(0, len(BANNER), 5):  # in small pieces: telnet commands split across reads
            conn.sendall(BANNER[index : index + 5])
        try:
            while True:
                username = next(lines)
                self.received.append(username)
                if not username:
                    self._write(conn, EOL + "Username: ")
                    username = next(lines)
                    self.received.append(username)
                self._write(conn, username + EOL + "Password: ")
                password = next(lines)
                self.received.append("<password>")
                if username == "jcliadmin" and password == self.password:
                    break
                self._write(conn, EOL + "Incorrect Username/Password." + EOL + "Username: ")
            self._write(conn, EOL + "Welcome to Jasmin 0.11.0 console" + EOL + "Session ref: 1" + EOL + "jcli : ")
            in_session = False
            for line in lines:
                self.received.append(line)
                if line in self.silent:
                    continue
                reply, in_session = self._answer(line, in_session)
                prompt = "> " if in_session else "jcli : "
                self._write(conn, line + EOL + (reply + EOL if reply else "") + prompt)
        except (StopIteration, OSError):
            pass
        finally:
            conn.close()

    def _answer(self, line: str, in_session: bool) -> tuple[str, bool]:
        if line == "quit":
            raise StopIteration
        if in_session:
            if line == "ko":
                return "", False
            if line == "ok":
                return self.replies.get("ok", "Successfully added connector [carrier]"), False
            key = line.split(maxsplit=1)[0]
            return self.replies.get(key, ""), True
        if line.endswith(" -a"):
            return "Adding a new connector: (ok: save, ko: exit)", True
        if line in self.replies:
            return self.replies[line], False
        return f"Incorrect command: {line}, type help for a list of commands", False

    @staticmethod
    def _lines(conn: socket.socket) -> Iterator[str]:
        buffer = b""
        while True:
            while b"\r\n" not in buffer:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buffer += chunk
            line, _, buffer = buffer.partition(b"\r\n")
            yield line.decode("ascii")

    @staticmethod
    def _write(conn: socket.socket, text: str) -> None:
        conn.sendall(text.encode("ascii"))

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def fake_jcli() -> Iterator[FakeJCliServer]:
    server = FakeJCliServer(
        replies={
            "smppccm -1 carrier": "Successfully started connector id:carrier",
            "smppccm -1 nope": "Unknown connector: nope",
            "group -l": "#Group id        " + EOL + "#customers       " + EOL + "Total Groups: 1",
            "bogus": "Unknown SMPPClientConfig key: bogus",
        }
    )
    yield server
    server.close()


def client(server: FakeJCliServer, **options: object) -> JCli:
    return JCli("127.0.0.1", server.port, timeout=2.0, **options)  # type: ignore[arg-type]


def test_login_sends_an_enter_after_authentication_required(fake_jcli: FakeJCliServer) -> None:
    with client(fake_jcli):
        pass

    assert fake_jcli.received[:3] == ["", "jcliadmin", "<password>"]


def test_a_command_returns_the_reply_without_echo_prompt_or_escape_codes(fake_jcli: FakeJCliServer) -> None:
    with client(fake_jcli) as jcli:
        reply = jcli.run("group -l", expect="Total Groups:")

    assert reply == "#Group id\n#customers\nTotal Groups: 1"
    assert provision.listed(reply) == {"customers": "#customers"}


def test_a_refused_command_raises_with_the_command_and_jclis_reply(fake_jcli: FakeJCliServer) -> None:
    with client(fake_jcli) as jcli, pytest.raises(JCliError) as error:
        jcli.run("smppccm -1 nope", expect="Successfully started")

    assert str(error.value) == "jCli command 'smppccm -1 nope' failed: jCli answered 'Unknown connector: nope'."


def test_a_reply_that_reads_as_a_refusal_raises_without_expect(fake_jcli: FakeJCliServer) -> None:
    with client(fake_jcli) as jcli, pytest.raises(JCliError, match=r"'frobnicate' failed: .*Incorrect command"):
        jcli.run("frobnicate")


def test_a_session_sends_each_key_then_ok(fake_jcli: FakeJCliServer) -> None:
    with client(fake_jcli) as jcli:
        reply = jcli.session("smppccm -a", [("cid", "carrier"), ("port", "2776")], saved="Successfully added")

    assert reply == "Successfully added connector [carrier]"
    sent = fake_jcli.received[fake_jcli.received.index("smppccm -a") :]
    assert sent[:4] == ["smppccm -a", "cid carrier", "port 2776", "ok"]


def test_a_refused_session_key_leaves_the_session_and_masks_the_password(fake_jcli: FakeJCliServer) -> None:
    with client(fake_jcli, secrets=["s3cret"]) as jcli:
        with pytest.raises(JCliError) as error:
            jcli.session("smppccm -a", [("password", "s3cret"), ("bogus", "s3cret")], saved="Successfully added")
        assert jcli.run("smppccm -1 carrier", expect="Successfully started")  # still usable after 'ko'

    assert str(error.value) == (
        "jCli command 'bogus ***' (in 'smppccm -a') failed: jCli answered 'Unknown SMPPClientConfig key: bogus'."
    )
    assert "s3cret" not in str(error.value)
    sent = fake_jcli.received[fake_jcli.received.index("smppccm -a") :]
    assert sent[:5] == ["smppccm -a", "password s3cret", "bogus s3cret", "ko", "smppccm -1 carrier"]


def test_a_wrong_password_is_refused_at_login(fake_jcli: FakeJCliServer) -> None:
    with pytest.raises(JCliError, match="refused the login of 'jcliadmin'"):
        client(fake_jcli, password="wrong").open()


def test_a_silent_jcli_times_out_naming_the_command(fake_jcli: FakeJCliServer) -> None:
    fake_jcli.silent.add("persist")
    jcli = JCli("127.0.0.1", fake_jcli.port, timeout=0.3).open()
    try:
        with pytest.raises(JCliConnectionError, match=r"did not answer 'persist' within 0.3 s"):
            jcli.run("persist")
    finally:
        jcli.close()


def test_an_unreachable_jcli_names_the_address_and_the_fix() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(JCliConnectionError, match=rf"127.0.0.1:{port} is not reachable .*realstack.jasmin up"):
        JCli("127.0.0.1", port, timeout=1).open()


def test_telnet_commands_are_stripped_and_a_partial_one_is_kept() -> None:
    text, rest = strip_telnet(b"\xff\xfd\x22ab\xff\xff\xff\xfa\x1f\x00\x50\xff\xf0c\xff\xfd")

    assert (text, rest) == (b"ab\xffc", b"\xff\xfd")
    assert clean("\x1bc\x1b[4hjcli : \r\r\n") == "jcli : \n"


# --- configure: the command sequence, idempotent ---------------------------------------------------------------


@dataclass
class RecordingJCli:
    """A jCli with state (groups, users, connectors) that records what configure sends."""

    groups: dict[str, bool] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    connectors: dict[str, dict[str, str]] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    commands: list[str] = field(default_factory=list)

    def run(self, line: str, *, expect: str | None = None, secret: bool = False) -> str:
        self.commands.append(line)
        _, _, arg = line.partition(" ")
        if line == "group -l":
            rows = "".join(f"\n#{'' if on else '!'}{gid}" for gid, on in self.groups.items())
            return f"#Group id{rows}\nTotal Groups: {len(self.groups)}"
        if line == "user -l":
            rows = "".join(f"\n#{uid} customers {name}" for uid, name in self.users.items())
            return f"#User id Group id Username{rows}\nTotal Users: {len(self.users)}"
        if line == "smppccm -l":
            rows = "".join(
                f"\n#{cid} {'started' if cid in self.started else 'stopped'} "
                f"{'BOUND_TRX' if cid in self.started else 'NONE'} 1 0"
                for cid in self.connectors
            )
            return f"#Connector id Service Session Starts Stops{rows}\nTotal connectors: {len(self.connectors)}"
        if line.startswith("smppccm -s "):
            return "\n".join(f"{key} {value}" for key, value in self.connectors[arg[3:]].items())
        if line.endswith(" -f"):
            return "Successfully flushed"
        if line.startswith("user -r "):
            del self.users[arg[3:]]
        elif line.startswith("group -e "):
            self.groups[arg[3:]] = True
        elif line.startswith("smppccm -1 "):
            self.started.add(arg[3:])
        return "ok"

    def session(self, opener: str, items: Sequence[tuple[str, str]], *, saved: str) -> str:
        self.commands.append(opener)
        self.commands.extend(f"{key} {value}" for key, value in items)
        self.commands.append("ok")
        values = dict(items)
        if opener == "group -a":
            self.groups[values["gid"]] = True
        elif opener == "user -a":
            self.users[values["uid"]] = values["username"]
        elif opener == "smppccm -a":
            self.connectors[values["cid"]] = {key: value for key, value in items}
        elif opener.startswith("smppccm -u "):
            self.connectors[opener[11:]].update(values)
        return saved


GATEWAY = GatewaySettings(carrier_port=2776, carrier_password="carr-pw1")


MANAGERS = {"group", "user", "smppccm", "filter", "mtrouter", "morouter", "persist"}


def steps(commands: list[str]) -> list[str]:
    """The manager commands (openers, removals, starts, flushes) without listings and session lines."""
    return [c for c in commands if c.split()[0] in MANAGERS and not c.endswith((" -l",)) and " -s " not in c]


def test_configure_on_an_empty_jasmin_adds_everything_in_order() -> None:
    jcli = RecordingJCli()

    provision.configure(jcli, GATEWAY)

    assert steps(jcli.commands) == [
        "group -a",
        "user -a",
        "smppccm -a",
        "smppccm -1 carrier",
        "mtrouter -f",
        "mtrouter -a",
        "morouter -f",
        "morouter -a",
        "persist",
    ]
    assert "submit_throughput 0" in jcli.commands
    assert {"con_fail_retry yes", "con_loss_retry yes", "dlr_expiry 3600"} <= set(jcli.commands)
    assert "connector smppc(carrier)" in jcli.commands and "rate 0.00" in jcli.commands
    assert "connector smpps(customer1)" in jcli.commands


def test_configure_provisions_accounts_throttling_mo_prefixes_and_the_outage_carrier() -> None:
    _, gateway = from_variables(LAB_STYLE_VARIABLES)
    jcli = RecordingJCli()

    provision.configure(jcli, gateway)

    assert steps(jcli.commands) == [
        "group -a",
        *["user -a"] * 3,
        "smppccm -a",
        "smppccm -1 carrier",
        "smppccm -a",
        "smppccm -1 outage",
        "mtrouter -f",
        "mtrouter -a",
        "filter -a",
        "mtrouter -a",
        "morouter -f",
        "morouter -a",
        "filter -a",
        "morouter -a",
        "filter -a",
        "morouter -a",
        "persist",
    ]
    assert "mt_messaging_cred quota smpps_throughput 2" in jcli.commands
    assert {"destination_addr ^999", "connector smppc(outage)", "filters outage-dst"} <= set(jcli.commands)
    assert {"destination_addr ^25411", "connector smpps(acme1)", "order 11"} <= set(jcli.commands)
    assert "port 3786" in jcli.commands


def test_configure_again_keeps_the_group_and_never_re_adds_the_connector() -> None:
    jcli = RecordingJCli()
    provision.configure(jcli, GATEWAY)
    jcli.commands.clear()

    provision.configure(jcli, GATEWAY)

    assert "group -a" not in jcli.commands
    assert jcli.commands.index("user -r customer1") < jcli.commands.index("user -a")
    assert "smppccm -s carrier" in jcli.commands
    assert not [c for c in jcli.commands if c.startswith(("smppccm -a", "smppccm -r", "smppccm -u", "smppccm -1"))]
    assert jcli.commands[-1] == "persist"


def test_configure_updates_only_the_changed_connector_keys() -> None:
    jcli = RecordingJCli()
    provision.configure(jcli, GATEWAY)
    jcli.commands.clear()

    provision.configure(jcli, GatewaySettings(carrier_port=2777, carrier_password="carr-pw1"))

    start = jcli.commands.index("smppccm -u carrier")
    assert jcli.commands[start : start + 3] == ["smppccm -u carrier", "port 2777", "ok"]


def test_configure_starts_a_stopped_connector() -> None:
    jcli = RecordingJCli()
    provision.configure(jcli, GATEWAY)
    jcli.started.clear()
    jcli.commands.clear()

    provision.configure(jcli, GATEWAY)

    assert "smppccm -1 carrier" in jcli.commands


def test_a_disabled_group_is_enabled() -> None:
    jcli = RecordingJCli(groups={"customers": False})

    provision.configure(jcli, GATEWAY)

    assert "group -e customers" in jcli.commands and "group -a" not in jcli.commands


def test_wait_until_bound_polls_until_the_connector_binds() -> None:
    jcli = RecordingJCli(connectors={"carrier": {}})
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if now[0] >= 1.0:
            jcli.started.add("carrier")

    state = provision.wait_until_bound(jcli, "carrier", timeout=5, clock=lambda: now[0], sleep=sleep)

    assert (state, now[0]) == ("BOUND_TRX", 1.0)


def test_wait_until_bound_gives_up_after_the_timeout() -> None:
    jcli = RecordingJCli(connectors={"carrier": {}})
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    assert provision.wait_until_bound(jcli, "carrier", timeout=2, clock=lambda: now[0], sleep=sleep) == "NONE"
    assert now[0] == pytest.approx(2.0)


# --- processes: by PID only ------------------------------------------------------------------------------------


def spawn_python(tmp_path: Path, code: str) -> processes.Record:
    return processes.spawn(
        "worker", [sys.executable, "-c", code], run_dir=tmp_path / "run", log=tmp_path / "worker.log"
    )


def test_a_spawned_process_is_recorded_and_stopped_by_its_pid(tmp_path: Path) -> None:
    record = spawn_python(tmp_path, "import time; time.sleep(30)")

    assert processes.load("worker", tmp_path / "run") == record
    assert processes.alive(record)
    assert processes.stop(record, grace=5) == f"worker (pid {record.pid}) stopped"
    assert not processes.alive(record)


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    code = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('re' + 'ady', flush=True); "
    code += "time.sleep(30)"
    record = spawn_python(tmp_path, code)
    log = tmp_path / "worker.log"
    processes.wait_for("ready", lambda: "\nready" in log.read_text(), timeout=5)

    assert processes.stop(record, grace=0.3).endswith("did not stop within 0.3 s of SIGTERM: killed")


def test_a_reused_pid_is_not_taken_for_the_recorded_process(tmp_path: Path) -> None:
    record = spawn_python(tmp_path, "import time; time.sleep(30)")
    impostor = processes.Record("worker", record.pid, record.start_ticks + 1, record.command, record.log)
    try:
        assert not processes.alive(impostor)
        assert processes.stop(impostor) == f"worker (pid {record.pid}) was not running"
        assert processes.alive(record)
    finally:
        processes.stop(record, grace=5)


def test_waiting_for_a_process_that_exits_names_its_log(tmp_path: Path) -> None:
    record = spawn_python(tmp_path, "raise SystemExit(3)")

    with pytest.raises(RealStackError, match=r"worker exited while waiting for jCli; see .*worker.log"):
        processes.wait_for("jCli", lambda: False, timeout=5, record=record)


def test_a_stale_jasmind_lock_and_its_twin_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    twin = tmp_path / "host.1234-567"
    twin.write_text("")
    lock = tmp_path / "jasmind.lock"
    os.link(twin, lock)
    monkeypatch.setattr(daemon, "jasmind_pids", list)
    said: list[str] = []

    assert daemon.clear_stale_lock(report=said.append, lock=lock)
    assert not lock.exists() and not twin.exists()
    assert said == [f"removed a stale {lock} left by a jasmind that did not exit cleanly"]


def test_a_held_jasmind_lock_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = tmp_path / "jasmind.lock"
    lock.write_text("")
    monkeypatch.setattr(daemon, "jasmind_pids", lambda: [4242])

    assert not daemon.clear_stale_lock(report=lambda _: None, lock=lock)
    assert lock.exists()


def test_another_jasmind_on_the_host_is_reported_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon, "jasmind_pids", lambda: [4242])

    with pytest.raises(RealStackError, match=r"Another jasmind runs on this host \(pid 4242\).*kill 4242"):
        daemon.check_can_start(JasminSettings(), Paths(root=tmp_path), report=lambda _: None)


NODELAY_PROBE = """
import socket
from twisted.internet import protocol, reactor

seen = {}


def nodelay(transport):
    return transport.getHandle().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


class Server(protocol.Protocol):
    def connectionMade(self):
        seen["server"] = nodelay(self.transport)


class Client(protocol.Protocol):
    def connectionMade(self):
        seen["client"] = nodelay(self.transport)
        reactor.callLater(0.05, reactor.stop)


port = reactor.listenTCP(0, protocol.Factory.forProtocol(Server), interface="127.0.0.1")
protocol.ClientCreator(reactor, Client).connectTCP("127.0.0.1", port.getHost().port)
reactor.callLater(5, reactor.stop)
reactor.run()
print(sorted(seen.items()))
"""


def test_the_nodelay_wrapper_sets_tcp_nodelay_on_both_ends_of_twisted_connections(tmp_path: Path) -> None:
    python = Paths().venv_python
    if not python.exists():
        pytest.skip("Jasmin's venv is not installed (python -m realstack.jasmin install)")
    probe = tmp_path / "probe.py"
    probe.write_text(NODELAY_PROBE, encoding="utf-8")

    def run(*command: str) -> str:
        done = subprocess.run([str(python), *command], capture_output=True, text=True, timeout=30, check=True)
        return done.stdout.strip()

    assert run(str(probe)) == "[('client', 0), ('server', 0)]"
    assert run(str(Paths().wrapper), str(probe)) == "[('client', 1), ('server', 1)]"
