"""Where the voice real stack lives on disk, its ports, the routing data, and kamailio.cfg from the template.

Values come from three places, later ones winning: the defaults here, a variables file
(``variables/realstack.yaml``) and command-line options. The routing data is the lab proxy's JSON config
(lab/sip/config.py), so a file written for the lab works here as it is:

| users               | ``{"1001": "pw1001"}``: SIP users and their digest passwords                        |
| services            | ``{"8000": "sip:voicemail@127.0.0.1:15100"}``: service number -> application URI   |
| trunks              | ``[{"prefix": "00", "uri": "sip:127.0.0.1:15200", "strip": 0}]``: PSTN peers         |
| on_failure          | ``{"8000": ["408", "480", "486", "404"]}`` or ``{"8000": {"codes": [...], "users":  |
|                     | [...]}}``: a failed call to a user is diverted to that service number              |
| trusted             | ``["127.0.0.1:15210"]``: sources (ip:port) without digest auth, besides the        |
|                     | services' and trunks' own addresses                                                |
| no_answer_timeout   | seconds of ringing before the call ends as 408 (20)                                |
| no_response_timeout | seconds without any answer before a request ends as 408 (5)                        |
| dialog_timeout      | an answered call without a BYE is forgotten after this many seconds (43200)        |
| domain, default_expires, min_expires, max_expires, nonce_ttl | as the lab proxy's                        |

Keys that only concern the lab's own process (host, port, http_port, name, relay, cdr_database,
record_route) are accepted and ignored: each Kamailio has its own port and name, its relays and its CDR database.
"""

from __future__ import annotations

import glob
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from realstack.voice.errors import RealStackError

TEMPLATE = Path(__file__).with_name("kamailio.cfg.template")
CDR_SCHEMA = Path(__file__).with_name("cdr_schema.sql")
REPO_ROOT = Path(__file__).resolve().parents[2]

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")
_SECRET = re.compile(r"^[!#%&'()*+,./0-9:;<=>?@A-Z\[\]^_`a-z{|}~-]{1,64}$")  # no $, quotes, backslash, spaces
_URI = re.compile(r"^sips?:(?:[A-Za-z0-9_.+-]+@)?[A-Za-z0-9_.-]+(?::\d{1,5})?(?:;[A-Za-z0-9_.=-]+)*$")
_PREFIX = re.compile(r"^\+?[0-9*#]{1,16}$")
_DB_ID = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_HOSTPORT = re.compile(r"^[0-9.]{7,15}:\d{1,5}$")
LAB_ONLY_KEYS = frozenset({"host", "port", "http_port", "name", "relay", "cdr_database", "record_route"})


@dataclass(frozen=True)
class Paths:
    """Every file and folder of the voice real stack, derived from the repository root."""

    root: Path = REPO_ROOT

    @property
    def state(self) -> Path:
        return self.root / ".realstack"

    @property
    def run(self) -> Path:
        """PID records of the processes this tool started (shared with realstack.jasmin)."""
        return self.state / "run"

    def instance_dir(self, name: str) -> Path:
        """An instance's own folder: rendered config, PID file, control sockets (``.realstack/kamailio-a``)."""
        return self.state / name

    def config_file(self, name: str) -> Path:
        return self.instance_dir(name) / "kamailio.cfg"

    def ctl_socket(self, name: str) -> Path:
        return self.instance_dir(name) / "kamailio_ctl"

    @property
    def results(self) -> Path:
        return self.root / "results" / "realstack"

    def log(self, name: str) -> Path:
        return self.results / f"{name}.log"


@dataclass(frozen=True)
class Proxy:
    """One Kamailio instance: SIP on UDP ``sip_port``, JSON-RPC over HTTP on TCP ``rpc_port`` (the next port)."""

    name: str
    sip_port: int

    @property
    def rpc_port(self) -> int:
        return self.sip_port + 1

    def rpc_url(self, host: str = "127.0.0.1") -> str:
        """Where the platform API and the voice applications send JSON-RPC (``http://127.0.0.1:5061/RPC``)."""
        return f"http://{host}:{self.rpc_port}/RPC"


@dataclass(frozen=True)
class Relay:
    """One RTPEngine instance: its ng (control) and CLI ports and its own RTP port range."""

    name: str
    ng_port: int
    cli_port: int
    port_min: int
    port_max: int


@dataclass(frozen=True)
class Trunk:
    """Numbers starting with ``prefix`` go to ``uri`` (a PSTN peer) with ``strip`` leading digits removed."""

    prefix: str
    uri: str
    strip: int = 0


@dataclass(frozen=True)
class FailureRule:
    """A call to a user (all users, or ``users``) failing with one of ``codes`` is diverted to ``service``."""

    service: str
    codes: frozenset[int]
    users: frozenset[str] | None = None


def _default_users() -> dict[str, str]:
    return {f"10{n:02d}": f"pw10{n:02d}" for n in range(1, 21)}


def _default_services() -> dict[str, str]:
    return {
        "8000": "sip:voicemail@127.0.0.1:15100",
        "8100": "sip:ivr@127.0.0.1:15110",
        "8200": "sip:queue@127.0.0.1:15120",
    }


@dataclass(frozen=True)
class Routing:
    """The proxy's routing data: the lab proxy's JSON config, field for field."""

    users: Mapping[str, str] = field(default_factory=_default_users)
    services: Mapping[str, str] = field(default_factory=_default_services)
    trunks: tuple[Trunk, ...] = (Trunk("00", "sip:127.0.0.1:15200", 0),)
    on_failure: tuple[FailureRule, ...] = (FailureRule("8000", frozenset({404, 408, 480, 486, 600})),)
    trusted: tuple[str, ...] = ()
    no_answer_timeout: float = 20.0
    no_response_timeout: float = 5.0
    dialog_timeout: float = 43200.0
    domain: str | None = None
    default_expires: int = 3600
    min_expires: int = 1
    max_expires: int = 3600
    nonce_ttl: int = 300

    def validate(self) -> Routing:
        if not self.users:
            raise RealStackError('The routing data needs at least one user (users: {"1001": "pw1001"}).')
        for user, password in self.users.items():
            if not _NAME.match(user):
                raise RealStackError(f"SIP user '{user}' is not valid: use 1-64 letters, digits, '_', '.', '+', '-'.")
            if not _SECRET.match(password):
                raise RealStackError(
                    f"The password of SIP user '{user}' must be 1-64 printable ASCII characters without spaces, "
                    "quotes, '$' or backslashes (they would break the Kamailio config)."
                )
        for number, uri in self.services.items():
            if not _NAME.match(number):
                raise RealStackError(
                    f"Service number '{number}' is not valid: use letters, digits, '_', '.', '+', '-'."
                )
            if not _URI.match(uri):
                raise RealStackError(
                    f"Service {number}'s URI '{uri}' is not a SIP URI like sip:voicemail@127.0.0.1:15100."
                )
        for trunk in self.trunks:
            if not _PREFIX.match(trunk.prefix):
                raise RealStackError(f"Trunk prefix '{trunk.prefix}' must be digits (optionally a leading '+').")
            if not _URI.match(trunk.uri):
                raise RealStackError(
                    f"Trunk {trunk.prefix}'s URI '{trunk.uri}' is not a SIP URI like sip:127.0.0.1:15200."
                )
            if not 0 <= trunk.strip <= 16:
                raise RealStackError(f"Trunk {trunk.prefix} strips {trunk.strip} digits; use 0-16.")
        for rule in self.on_failure:
            if rule.service not in self.services:
                known = ", ".join(self.services) or "none"
                raise RealStackError(f"on_failure names '{rule.service}', which is not in services ({known}).")
            if not rule.codes or not all(300 <= code < 700 for code in rule.codes):
                raise RealStackError(f"on_failure.{rule.service} codes must be final failure codes 300-699.")
            if rule.users is not None and not all(_NAME.match(user) for user in rule.users):
                raise RealStackError(f"on_failure.{rule.service}.users must be user names.")
        for source in self.trusted:
            if not _HOSTPORT.match(source):
                raise RealStackError(f"trusted entries must look like 127.0.0.1:15300, not '{source}'.")
        for name in ("no_answer_timeout", "no_response_timeout"):
            if not 0 < getattr(self, name) <= 600:
                raise RealStackError(f"{name} must be 0-600 seconds, got {getattr(self, name)}.")
        if not 1 <= self.dialog_timeout <= 604800:
            raise RealStackError(f"dialog_timeout must be 1-604800 seconds, got {self.dialog_timeout}.")
        if self.domain is not None and not re.match(r"^[A-Za-z0-9.-]{1,128}$", self.domain):
            raise RealStackError(f"domain '{self.domain}' must be a host name or IP address.")
        if not 1 <= self.min_expires <= self.max_expires or self.default_expires < 1:
            raise RealStackError(
                "Registration lifetimes need 1 <= min_expires <= max_expires and default_expires >= 1."
            )
        if self.nonce_ttl < 1:
            raise RealStackError(f"nonce_ttl must be at least 1 s, got {self.nonce_ttl}.")
        return self

    def trusted_sources(self) -> list[str]:
        """ip:port of every source that needs no digest auth: the services, the trunks and ``trusted``."""
        found = [address_of(uri) for uri in self.services.values()]
        found += [address_of(trunk.uri) for trunk in self.trunks]
        found += list(self.trusted)
        return list(dict.fromkeys(found))


def address_of(uri: str) -> str:
    """``ip:port`` a SIP URI points at (port 5060 when it names none)."""
    hostport = uri.split(":", 1)[1].split(";", 1)[0].rsplit("@", 1)[-1]
    return hostport if ":" in hostport else f"{hostport}:5060"


@dataclass(frozen=True)
class CdrDatabase:
    """Where Kamailio writes accounting rows and where the ``cdrs`` view is: the machine's PostgreSQL.

    Kamailio connects as ``user`` (a role whose tables live in the schema of the same name); ``cdrs`` is a
    view in ``public`` that the suites read as ``admin_user``, as they read the lab proxy's table.
    """

    host: str = "127.0.0.1"
    port: int = 5432
    name: str = "telco_billing"
    admin_user: str = "postgres"
    user: str = "kamailio"
    view: str = "cdrs"

    @property
    def kamailio_url(self) -> str:
        return f"postgres://{quote(self.user)}@{self.host}:{self.port}/{quote(self.name)}"

    def validate(self) -> CdrDatabase:
        for what, value in (("database", self.name), ("user", self.user), ("view", self.view)):
            if not _DB_ID.match(value):
                raise RealStackError(f"CDR {what} '{value}' must be a plain lower-case SQL name (a-z, 0-9, '_').")
        _check_port("PostgreSQL port", self.port)
        return self


@dataclass(frozen=True)
class VoiceSettings:
    host: str = "127.0.0.1"
    domain: str = "127.0.0.1"
    proxies: tuple[Proxy, ...] = (Proxy("kamailio-a", 5060), Proxy("kamailio-b", 5062))
    relays: tuple[Relay, ...] = (
        Relay("rtpengine-a", 2223, 2224, 20000, 29999),
        Relay("rtpengine-b", 2225, 2226, 30000, 39999),
    )
    routing: Routing = field(default_factory=Routing)
    accounting: bool = True
    database: CdrDatabase = field(default_factory=CdrDatabase)
    shm_mb: int = 512
    pkg_mb: int = 8
    children: int = 4
    debug: int = 2
    rtpengine_threads: int = 2
    rtpengine_timeout: int = 30

    def validate(self) -> VoiceSettings:
        if self.host != "127.0.0.1":
            raise RealStackError(f"The voice real stack listens on 127.0.0.1 only, got host '{self.host}'.")
        if not self.proxies or not self.relays:
            raise RealStackError("At least one Kamailio and one RTPEngine instance are needed.")
        names = [p.name for p in self.proxies] + [r.name for r in self.relays]
        if len(set(names)) != len(names) or not all(_NAME.match(n) for n in names):
            raise RealStackError(f"Instance names must be distinct plain names, got {names}.")
        ports: list[int] = [port for p in self.proxies for port in (p.sip_port, p.rpc_port)]
        for relay in self.relays:
            ports += [relay.ng_port, relay.cli_port]
            if not 1024 <= relay.port_min < relay.port_max <= 65535 or relay.port_max - relay.port_min < 100:
                raise RealStackError(
                    f"{relay.name}: RTP ports {relay.port_min}-{relay.port_max} must be a range of at least 100 "
                    "ports within 1024-65535."
                )
        for port in ports:
            _check_port("port", port)
        if len(set(ports)) != len(ports):
            raise RealStackError(
                f"SIP, JSON-RPC (SIP port + 1), ng and CLI ports must all differ, got {sorted(ports)}."
            )
        ranges = sorted((r.port_min, r.port_max, r.name) for r in self.relays)
        for (_, high, first), (low, _, second) in itertools.pairwise(ranges):
            if low <= high:
                raise RealStackError(f"The RTP port ranges of {first} and {second} overlap; give each its own.")
        if any(r.port_min <= port <= r.port_max for r in self.relays for port in ports):
            raise RealStackError("A SIP/JSON-RPC/ng/CLI port lies inside an RTP port range; move one of them.")
        if self.shm_mb < 64 or self.pkg_mb < 4 or not 1 <= self.children <= 64:
            raise RealStackError("Kamailio needs shm_mb >= 64, pkg_mb >= 4 and 1-64 children.")
        self.routing.validate()
        self.database.validate()
        return self


def _check_port(name: str, value: int) -> None:
    if not 0 < value < 65536:
        raise RealStackError(f"{name} must be 1-65535, got {value}.")


# --- the variables file ------------------------------------------------------------------------------------


def routing_from(data: Any, *, source: str) -> Routing:
    """`Routing` from the lab proxy's JSON shape (a mapping); keys it lacks keep their defaults."""
    if not isinstance(data, Mapping):
        raise RealStackError(f"The routing data in {source} must be a mapping like the lab proxy's JSON config.")
    known = {f.name for f in fields(Routing)}
    unknown = sorted(set(data) - known - LAB_ONLY_KEYS)
    if unknown:
        raise RealStackError(f"The routing data in {source} has unknown keys {unknown}; known: {sorted(known)}.")
    changes: dict[str, Any] = {}
    try:
        for key in ("users", "services"):
            if key in data:
                changes[key] = {str(k): str(v) for k, v in _mapping(data[key], key, source).items()}
        if "trunks" in data:
            trunks = []
            for entry in data["trunks"] or []:
                if not isinstance(entry, Mapping) or "prefix" not in entry or "uri" not in entry:
                    raise RealStackError(f"Each trunk in {source} needs 'prefix' and 'uri', got {entry!r}.")
                trunks.append(Trunk(str(entry["prefix"]), str(entry["uri"]), int(entry.get("strip", 0))))
            changes["trunks"] = tuple(trunks)
        if "on_failure" in data:
            changes["on_failure"] = tuple(
                _failure_rule(str(service), value, source)
                for service, value in _mapping(data["on_failure"], "on_failure", source).items()
            )
        if "trusted" in data:
            changes["trusted"] = tuple(str(item) for item in data["trusted"] or [])
        for key in ("no_answer_timeout", "no_response_timeout", "dialog_timeout"):
            if key in data:
                changes[key] = float(data[key])
        for key in ("default_expires", "min_expires", "max_expires", "nonce_ttl"):
            if key in data:
                changes[key] = int(float(data[key]))
    except (TypeError, ValueError) as error:
        raise RealStackError(f"The routing data in {source} has a value of the wrong kind: {error}.") from error
    if data.get("domain"):
        changes["domain"] = str(data["domain"])
    return replace(Routing(), **changes)


def _mapping(value: Any, key: str, source: str) -> Mapping[str, Any]:
    value = value or {}
    if not isinstance(value, Mapping):
        raise RealStackError(f"'{key}' in {source} must be a mapping, got {value!r}.")
    return value


def _failure_rule(service: str, value: Any, source: str) -> FailureRule:
    users: Any = None
    codes = value
    if isinstance(value, Mapping):
        codes, users = value.get("codes"), value.get("users")
    if isinstance(codes, str | int) or codes is None:
        raise RealStackError(f"on_failure.{service} in {source} must list status codes such as ['486', '408'].")
    if users is not None and not isinstance(users, list):
        raise RealStackError(f"on_failure.{service}.users in {source} must be a list of user names.")
    return FailureRule(
        service,
        frozenset(int(code) for code in codes),
        frozenset(str(user) for user in users) if users is not None else None,
    )


def load_routing_file(path: Path) -> Routing:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RealStackError(f"Cannot read the routing file {path}: {error}") from error
    return routing_from(data, source=str(path))


def from_variables(variables: Mapping[str, Any]) -> VoiceSettings:
    """Settings from a variables file's mapping (REALSTACK_VOICE_* keys); missing keys keep their defaults.

    | REALSTACK_VOICE_SIP_PORTS       | ``[5060, 5062]``: one Kamailio per port (kamailio-a, kamailio-b, ...)     |
    | REALSTACK_VOICE_RTPENGINE_PORTS | ``[2223, 2225]``: one RTPEngine per ng port; its CLI is the next port   |
    | REALSTACK_VOICE_RTP_PORTS       | ``[20000, 39999]``: split evenly between the RTPEngines                  |
    | REALSTACK_VOICE_ROUTING         | the routing data (the lab proxy's JSON shape)                            |
    | REALSTACK_VOICE_CDR_DATABASE    | PostgreSQL database for accounting and the ``cdrs`` view (telco_billing) |
    """
    settings = VoiceSettings()
    changes: dict[str, Any] = {}
    if "REALSTACK_VOICE_SIP_PORTS" in variables:
        ports = _int_list(variables["REALSTACK_VOICE_SIP_PORTS"], "REALSTACK_VOICE_SIP_PORTS")
        changes["proxies"] = tuple(Proxy(f"kamailio-{chr(ord('a') + i)}", port) for i, port in enumerate(ports))
    ng_ports = [r.ng_port for r in settings.relays]
    if "REALSTACK_VOICE_RTPENGINE_PORTS" in variables:
        ng_ports = _int_list(variables["REALSTACK_VOICE_RTPENGINE_PORTS"], "REALSTACK_VOICE_RTPENGINE_PORTS")
    low, high = settings.relays[0].port_min, settings.relays[-1].port_max
    if "REALSTACK_VOICE_RTP_PORTS" in variables:
        bounds = _int_list(variables["REALSTACK_VOICE_RTP_PORTS"], "REALSTACK_VOICE_RTP_PORTS")
        if len(bounds) != 2:
            raise RealStackError("REALSTACK_VOICE_RTP_PORTS must be [lowest, highest], e.g. [20000, 39999].")
        low, high = bounds
    changes["relays"] = relays_for(ng_ports, low, high)
    if "REALSTACK_VOICE_ROUTING" in variables:
        changes["routing"] = routing_from(variables["REALSTACK_VOICE_ROUTING"], source="REALSTACK_VOICE_ROUTING")
    if "REALSTACK_VOICE_CDR_DATABASE" in variables:
        changes["database"] = replace(settings.database, name=str(variables["REALSTACK_VOICE_CDR_DATABASE"]))
    return replace(settings, **changes)


def relays_for(ng_ports: list[int], low: int, high: int) -> tuple[Relay, ...]:
    """One relay per ng port (CLI on the next port), the RTP range ``low``-``high`` split evenly between them."""
    if not ng_ports:
        raise RealStackError("At least one RTPEngine ng port is needed.")
    size = (high - low + 1) // len(ng_ports)
    size -= size % 2  # RTP on even ports, RTCP on the odd one above
    return tuple(
        Relay(f"rtpengine-{chr(ord('a') + i)}", port, port + 1, low + i * size, low + (i + 1) * size - 1)
        for i, port in enumerate(ng_ports)
    )


def _int_list(value: Any, key: str) -> list[int]:
    if not isinstance(value, list) or not value:
        raise RealStackError(f"{key} must be a non-empty list of numbers, got {value!r}.")
    try:
        return [int(item) for item in value]
    except (TypeError, ValueError) as error:
        raise RealStackError(f"{key} must be a list of numbers, got {value!r}.") from error


# --- kamailio.cfg ----------------------------------------------------------------------------------------


def module_path() -> str:
    """Kamailio's module folder (Debian: /usr/lib/<triplet>/kamailio/modules/)."""
    found = sorted(glob.glob("/usr/lib/*/kamailio/modules/")) + sorted(glob.glob("/usr/lib/kamailio/modules/"))
    return found[0] if found else "/usr/lib/x86_64-linux-gnu/kamailio/modules/"


def htable_lines(routing: Routing) -> str:
    lines = [f'    $sht(users=>{user}) = "{password}";' for user, password in routing.users.items()]
    lines += [f'    $sht(services=>{number}) = "{uri}";' for number, uri in routing.services.items()]
    lines += [f"    $sht(trusted=>{source}) = 1;" for source in routing.trusted_sources()]
    return "\n".join(lines)


def trunk_lines(routing: Routing) -> str:
    """One block per trunk, longest prefix first: strip digits, send to the peer with the rest as the user."""
    blocks = []
    for trunk in sorted(routing.trunks, key=lambda t: len(t.prefix), reverse=True):
        hostport = trunk.uri.split(":", 1)[1].split(";", 1)[0].rsplit("@", 1)[-1]
        params = "".join(f";{p}" for p in trunk.uri.split(";")[1:])
        pattern = "^" + re.escape(trunk.prefix).replace("\\", "\\\\")
        blocks.append(
            f'    if ($rU =~ "{pattern}") {{\n'
            f"        $var(number) = $(rU{{s.substr,{trunk.strip},0}});\n"
            f'        $ru = "sip:" + $var(number) + "@{hostport}{params}";\n'
            f"        route(RELAY);\n"
            f"    }}"
        )
    return "\n".join(blocks)


def failure_lines(routing: Routing) -> str:
    """One test per on_failure rule, in order: the first whose codes (and users) match sets the target."""
    blocks = []
    for rule in routing.on_failure:
        codes = " || ".join(f"$var(code) == {code}" for code in sorted(rule.codes))
        condition = f"({codes})"
        if rule.users is not None:
            users = " || ".join(f'$avp(callee) == "{user}"' for user in sorted(rule.users)) or "0"
            condition += f" && ({users})"
        blocks.append(
            f"    if ({condition}) {{\n"
            f'        $var(target) = "{routing.services[rule.service]}";\n'
            f"        return;\n"
            f"    }}"
        )
    return "\n".join(blocks) or "    return;"


def render_config(settings: VoiceSettings, proxy: Proxy, paths: Paths, template: str | None = None) -> str:
    """kamailio.cfg for one instance from the template in this package."""
    text = TEMPLATE.read_text(encoding="utf-8") if template is None else template
    routing = settings.routing
    values = {
        "proxy_name": proxy.name,
        "sip_port": str(proxy.sip_port),
        "rpc_port": str(proxy.rpc_port),
        "dialog_timeout": str(round(routing.dialog_timeout)),
        "host": settings.host,
        "domain": routing.domain or settings.domain,
        "run_dir": str(paths.instance_dir(proxy.name)),
        "debug": str(settings.debug),
        "children": str(settings.children),
        "module_path": module_path(),
        "no_answer_ms": str(round(routing.no_answer_timeout * 1000)),
        "no_response_ms": str(round(routing.no_response_timeout * 1000)),
        "default_expires": str(min(max(routing.default_expires, routing.min_expires), routing.max_expires)),
        "min_expires": str(routing.min_expires),
        "max_expires": str(routing.max_expires),
        "nonce_ttl": str(routing.nonce_ttl),
        "feature_defines": "#!define WITH_ACCOUNTING" if settings.accounting else "# (accounting off: no CDRs)",
        "rtpengine_sockets": " ".join(f"udp:{settings.host}:{relay.ng_port}=1" for relay in settings.relays),
        "db_url": settings.database.kamailio_url,
        "htable_lines": htable_lines(routing),
        "trunk_lines": trunk_lines(routing),
        "failure_lines": failure_lines(routing),
    }

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise RealStackError(f"The kamailio.cfg template has an unknown placeholder: '{name}'.")
        return values[name]

    return _PLACEHOLDER.sub(fill, text)


def write_config(settings: VoiceSettings, proxy: Proxy, paths: Paths) -> Path:
    """Render kamailio.cfg into the instance's folder (``.realstack/kamailio-a/kamailio.cfg``)."""
    folder = paths.instance_dir(proxy.name)
    folder.mkdir(parents=True, exist_ok=True)
    paths.results.mkdir(parents=True, exist_ok=True)
    target = paths.config_file(proxy.name)
    target.write_text(render_config(settings, proxy, paths), encoding="utf-8")
    target.chmod(0o600)  # it holds the SIP users' passwords
    return target


# --- what runs: the settings `up` started the stack with ------------------------------------------------------


def state_file(paths: Paths) -> Path:
    return paths.state / "voice.json"


def to_json(settings: VoiceSettings) -> str:
    """The settings as JSON (the routing's passwords included: the file is mode 600, like kamailio.cfg)."""

    def plain(value: Any) -> Any:
        if isinstance(value, frozenset):
            return sorted(value)
        if isinstance(value, tuple | list):
            return [plain(item) for item in value]
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        return value

    return json.dumps(plain(asdict(settings)), indent=2, sort_keys=True)


def from_json(text: str) -> VoiceSettings:
    data = json.loads(text)
    routing = dict(data["routing"])
    routing["trunks"] = tuple(Trunk(**entry) for entry in routing["trunks"])
    routing["on_failure"] = tuple(
        FailureRule(
            rule["service"],
            frozenset(rule["codes"]),
            frozenset(rule["users"]) if rule["users"] is not None else None,
        )
        for rule in routing["on_failure"]
    )
    routing["trusted"] = tuple(routing["trusted"])
    data["routing"] = Routing(**routing)
    data["proxies"] = tuple(Proxy(**entry) for entry in data["proxies"])
    data["relays"] = tuple(Relay(**entry) for entry in data["relays"])
    data["database"] = CdrDatabase(**data["database"])
    return VoiceSettings(**data)


def save_state(settings: VoiceSettings, paths: Paths) -> Path:
    target = state_file(paths)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(to_json(settings), encoding="utf-8")
    target.chmod(0o600)
    return target


def load_state(paths: Paths) -> VoiceSettings | None:
    """The settings of the stack `up` started last, or None (no file, or one this version cannot read)."""
    try:
        return from_json(state_file(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
