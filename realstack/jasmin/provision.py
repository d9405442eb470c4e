"""`configure`: provision Jasmin through jCli for the real-stack suites, idempotently.

The steps, each answer checked by `JCli`:

1. group ``gid`` (added when missing, enabled when disabled);
2. one user per account (removed when present, then added: username = SMPP system_id, password, group, and
   for a throttled account the ``smpps_throughput``/``http_throughput`` quotas);
3. SMPP client connectors to the carrier simulators (added, or updated in place when present) with
   ``submit_throughput 0`` — Jasmin's default is 1 msg/s — reconnection on failure and loss, ``dlr_expiry``;
   started with ``smppccm -1`` unless they run;
4. MT routes (flushed, then): DefaultRoute → ``smppc(carrier)`` at rate 0.00, and with an outage carrier a
   StaticMTRoute for its number prefix; MO routes (flushed, then): DefaultRoute → ``smpps(first account)``
   and a StaticMORoute per account with ``numbers``;
5. ``persist``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from realstack.jasmin.errors import JCliError
from realstack.jasmin.settings import Account, GatewaySettings

OUTAGE_FILTER = "outage-dst"


class JCliLike(Protocol):
    """What provisioning needs from a jCli connection (`JCli`, or a fake in the unit tests)."""

    def run(self, line: str, *, expect: str | None = None, secret: bool = False) -> str: ...

    def session(self, opener: str, items: Sequence[tuple[str, str]], *, saved: str) -> str: ...


def listed(reply: str) -> dict[str, str]:
    """Rows of a jCli ``-l`` listing: first column (without the ``!`` of a disabled entry) → the whole row.

    The first ``#`` row is the header; the last line is the total.
    """
    rows: dict[str, str] = {}
    lines = [line.strip() for line in reply.splitlines() if line.strip().startswith("#")]
    for line in lines[1:]:
        columns = line[1:].split()
        if columns:
            rows[columns[0].lstrip("!")] = line
    return rows


def shown(reply: str) -> dict[str, str]:
    """``key value`` lines of a jCli ``-s`` (show) reply."""
    pairs: dict[str, str] = {}
    for line in reply.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            pairs[key] = value.strip()
    return pairs


def same(current: str | None, wanted: str) -> bool:
    """Whether a shown value equals the wanted one (``2`` equals ``2.0``)."""
    if current is None:
        return False
    try:
        return float(current) == float(wanted)
    except ValueError:
        return current == wanted


def connector_items(gateway: GatewaySettings, cid: str, port: int) -> list[tuple[str, str]]:
    delay = str(gateway.reconnect_delay)
    return [
        ("cid", cid),
        ("host", gateway.carrier_host),
        ("port", str(port)),
        ("username", gateway.carrier_username),
        ("password", gateway.carrier_password),
        ("submit_throughput", str(gateway.submit_throughput)),
        ("con_fail_retry", "yes"),
        ("con_fail_delay", delay),
        ("con_loss_retry", "yes"),
        ("con_loss_delay", delay),
        ("dlr_expiry", str(gateway.dlr_expiry)),
    ]


def user_items(account: Account, group: str) -> list[tuple[str, str]]:
    items = [("username", account.system_id), ("password", account.password), ("gid", group), ("uid", account.user_id)]
    if account.throughput is not None:
        rate = f"{account.throughput:g}"
        items += [
            ("mt_messaging_cred quota smpps_throughput", rate),
            ("mt_messaging_cred quota http_throughput", rate),
        ]
    return items


def configure(jcli: JCliLike, gateway: GatewaySettings, *, report: Callable[[str], None] = lambda _: None) -> None:
    """Bring Jasmin's group, users, connectors and routes to ``gateway``; safe to run again."""
    groups = listed(jcli.run("group -l", expect=r"Total Groups:"))
    if gateway.group not in groups:
        jcli.session("group -a", [("gid", gateway.group)], saved=r"Successfully added Group")
        report(f"group {gateway.group}: added")
    elif groups[gateway.group].startswith("#!"):
        jcli.run(f"group -e {gateway.group}", expect=r"Successfully enabled")
        report(f"group {gateway.group}: enabled")
    else:
        report(f"group {gateway.group}: present")

    users = listed(jcli.run("user -l", expect=r"Total Users"))
    for account in gateway.accounts:
        if account.user_id in users:
            jcli.run(f"user -r {account.user_id}", expect=r"Successfully removed User")
        jcli.session("user -a", user_items(account, gateway.group), saved=r"Successfully added User")
        limit = f", {account.throughput:g} msg/s" if account.throughput is not None else ""
        numbers = f", MO for {account.numbers}…" if account.numbers else ""
        report(f"user {account.user_id}: system_id {account.system_id} in group {gateway.group}{limit}{numbers}")

    carriers = [(gateway.connector, gateway.carrier_port)]
    if gateway.outage_port is not None:
        carriers.append((gateway.outage_connector, gateway.outage_port))
    for cid, port in carriers:
        action = _connector(jcli, cid, connector_items(gateway, cid, port))
        report(
            f"connector {cid}: {action}, {gateway.carrier_username}@{gateway.carrier_host}:{port}, "
            f"submit_throughput {gateway.submit_throughput}, started"
        )

    # Routes are flushed and added again: the tables then hold exactly these routes (adding at an order
    # replaces the route there, but a route of an earlier configuration would stay).
    jcli.run("mtrouter -f", expect=r"Successfully flushed")
    jcli.session(
        "mtrouter -a",
        [("type", "DefaultRoute"), ("connector", f"smppc({gateway.connector})"), ("rate", "0.00")],
        saved=r"Successfully added MTRoute",
    )
    report(f"MT route: default → smppc({gateway.connector})")
    if gateway.outage_port is not None and gateway.outage_prefix is not None:
        _prefix_filter(jcli, OUTAGE_FILTER, gateway.outage_prefix)
        jcli.session(
            "mtrouter -a",
            [
                ("type", "StaticMTRoute"),
                ("order", "10"),
                ("connector", f"smppc({gateway.outage_connector})"),
                ("filters", OUTAGE_FILTER),
                ("rate", "0.00"),
            ],
            saved=r"Successfully added MTRoute",
        )
        report(f"MT route: {gateway.outage_prefix}… → smppc({gateway.outage_connector})")

    jcli.run("morouter -f", expect=r"Successfully flushed")
    first = gateway.accounts[0].system_id
    jcli.session(
        "morouter -a",
        [("type", "DefaultRoute"), ("connector", f"smpps({first})")],
        saved=r"Successfully added MORoute",
    )
    report(f"MO route: default → smpps({first})")
    for index, account in enumerate(gateway.accounts):
        if not account.numbers:
            continue
        fid = f"mo-{index}"
        _prefix_filter(jcli, fid, account.numbers)
        jcli.session(
            "morouter -a",
            [
                ("type", "StaticMORoute"),
                ("order", str(10 + index)),
                ("connector", f"smpps({account.system_id})"),
                ("filters", fid),
            ],
            saved=r"Successfully added MORoute",
        )
        report(f"MO route: {account.numbers}… → smpps({account.system_id})")

    reply = jcli.run("persist", expect=r"configuration persisted")
    if "Failed" in reply:
        raise JCliError(f"jCli command 'persist' failed: jCli answered '{reply}'.")
    report("configuration persisted (profile jcli-prod)")


def _connector(jcli: JCliLike, cid: str, items: list[tuple[str, str]]) -> str:
    """Add the connector, or update what changed; start it unless it runs. Returns what was done."""
    if cid in listed(jcli.run("smppccm -l", expect=r"Total connectors:")):
        # Updated in place, never removed and re-added: a connector re-added under the same cid in a running
        # jasmind leaves the old one's AMQP consumer behind, which keeps taking messages and requeues them
        # ("SMPPC [cid:…] is not bound: Requeuing") — every other message is delayed by the requeue delay.
        # Only changed keys are sent: changing host, port, username or password restarts the connector, and
        # that restart costs jCli a 5 s retry.
        current = shown(jcli.run(f"smppccm -s {cid}", expect=r"(?m)^cid "))
        changed = [(key, value) for key, value in items[1:] if not same(current.get(key), value)]
        if changed:
            jcli.session(f"smppccm -u {cid}", changed, saved=r"Successfully updated connector")
            action = f"updated ({', '.join(key for key, _ in changed)})"
        else:
            action = "unchanged"
    else:
        jcli.session("smppccm -a", items, saved=r"Successfully added connector")
        action = "added"
    service = _column(listed(jcli.run("smppccm -l", expect=r"Total connectors:")).get(cid), 1)
    if service != "started":
        jcli.run(f"smppccm -1 {cid}", expect=r"Successfully started connector")
    return action


def _prefix_filter(jcli: JCliLike, fid: str, prefix: str) -> None:
    """A DestinationAddrFilter matching numbers that start with ``prefix`` (adding replaces the same fid)."""
    jcli.session(
        "filter -a",
        [("type", "DestinationAddrFilter"), ("fid", fid), ("destination_addr", f"^{prefix}")],
        saved=r"Successfully added Filter",
    )


def connector_state(jcli: JCliLike, connector: str) -> str:
    """The connector's session state from ``smppccm -l`` (e.g. ``BOUND_TRX``), or ``missing``."""
    row = listed(jcli.run("smppccm -l", expect=r"Total connectors:")).get(connector)
    return "missing" if row is None else _column(row, 2)


def _column(row: str | None, index: int) -> str:
    """Column ``index`` of a listing row (``#carrier started BOUND_TRX 1 0``: 0 id, 1 service, 2 session)."""
    columns = row[1:].split() if row else []
    return columns[index] if len(columns) > index else "unknown"


def wait_until_bound(
    jcli: JCliLike,
    connector: str,
    *,
    timeout: float,
    interval: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll until the connector is bound to the carrier; returns the last state seen (``BOUND_*`` or not)."""
    deadline = clock() + timeout
    state = connector_state(jcli, connector)
    while not state.startswith("BOUND") and clock() < deadline:
        sleep(interval)
        state = connector_state(jcli, connector)
    return state
