"""Keywords that run and drive the upstream carrier SMSC the SMS gateway binds to."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from robot.api import logger
from robotlibcore import keyword

from SmppLibrary.carrier import CarrierSmsc, ControlServer, RemoteCarrier, group_messages
from SmppLibrary.carrier.records import describe_message
from SmppLibrary.codec import parse_coding
from SmppLibrary.context import CarrierEntry
from SmppLibrary.errors import CarrierError
from SmppLibrary.keywords.base import SmppComponent
from SmppLibrary.keywords.submit import CodingName

MAX_LISTED = 10


class CarrierKeywords(SmppComponent):
    @keyword(name="Start Carrier SMSC")
    def start_carrier_smsc(
        self,
        *,
        port: int = 0,
        accounts: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        control_port: int | None = None,
        alias: str | None = None,
        system_id: str = "carrier",
    ) -> int:
        """Starts a carrier SMSC in this process and returns its SMPP port (``port=0``: a free one).

        ``accounts`` maps system_id to password (wrong password: ``ESME_RINVPASWD``, unknown system_id:
        ``ESME_RINVSYSID``); without accounts every bind is accepted. With ``control_port`` it also serves
        the HTTP control API (``0``: a free port; see `Get Carrier Status`). It becomes the carrier the
        other carrier keywords drive; `Stop Carrier SMSC` stops it, and the library stops it at the end
        of its scope if a test does not.

        | ${port}= | `Start Carrier SMSC` | accounts=${{ {'gateway': 'secret'} }} |
        | ${port}= | `Start Carrier SMSC` | port=2776 | accounts=&{CARRIER_ACCOUNTS} | alias=carrier-b |
        """
        carrier = CarrierSmsc(host=host, port=port, accounts=accounts, system_id=system_id)
        bound_port = carrier.start()
        control = None
        if control_port is not None:
            try:
                control = ControlServer(carrier, host=host, port=control_port)
            except OSError as error:
                carrier.stop()
                raise CarrierError(
                    f"The carrier control API cannot listen on {host}:{control_port}: {error.strerror or error}."
                ) from None
            control.start()
        label = f"{host}:{bound_port}"
        self.ctx.carriers.register(CarrierEntry(carrier, label, carrier, control), alias)
        logger.info(
            f"Carrier SMSC listening on {label}"
            f"{f', control API {control.url}' if control else ''}; accounts: "
            f"{', '.join(sorted(carrier.accounts)) or '(any bind accepted)'}."
        )
        return bound_port

    @keyword(name="Connect To Carrier SMSC")
    def connect_to_carrier_smsc(
        self, control_url: str, *, alias: str | None = None, timeout: timedelta | None = None
    ) -> dict[str, Any]:
        """Drives a carrier SMSC that runs elsewhere (the lab supervisor's) through its control API.

        Returns its status (``port``, ``binds``, ``behaviour``, counters). Fails when the API does not answer.

        | `Connect To Carrier SMSC` | ${CARRIER_CONTROL_URL} |
        """
        remote = RemoteCarrier(control_url, timeout=self.ctx.seconds(timeout))
        status = remote.status()
        self.ctx.carriers.register(CarrierEntry(remote, control_url), alias)
        logger.info(f"Using the carrier SMSC at {control_url} (SMPP port {status.get('port')}).")
        return status

    @keyword(name="Switch Carrier SMSC")
    def switch_carrier_smsc(self, alias_or_index: str | int) -> None:
        """Makes the carrier with this alias or index the one the carrier keywords drive."""
        try:
            self.ctx.carriers.switch(alias_or_index)
        except RuntimeError as error:
            raise ValueError(f"{error} Start or connect one with alias={alias_or_index}.") from None

    @keyword(name="Stop Carrier SMSC")
    def stop_carrier_smsc(self) -> None:
        """Stops the current in-process carrier (closing its binds); a remote one is only forgotten.

        Safe in a teardown: does nothing when no carrier is in use.
        """
        if not self.ctx.carriers:
            logger.info("No carrier SMSC to stop.")
            return
        entry = self.ctx.carrier()
        entry.stop()
        logger.info(f"Stopped carrier SMSC {entry.label}." if entry.local else f"Released carrier {entry.label}.")

    @keyword(name="Stop All Carrier SMSCs")
    def stop_all_carrier_smscs(self) -> None:
        """Stops every in-process carrier and forgets the remote ones; for suite teardowns."""
        self.ctx.stop_carriers()

    @keyword(name="Get Carrier Status")
    def get_carrier_status(self) -> dict[str, Any]:
        """Returns ``host``, ``port``, ``running``, ``binds``, ``behaviour``, ``submits``, ``deliveries`` and the
        counters ``throttled``, ``malformed``, ``nacked``, ``binds_accepted``, ``bind_failures``, ``max_in_flight``
        (plus ``control_url``)."""
        entry = self.ctx.carrier()
        status = entry.api.status()
        status["control_url"] = entry.control.url if entry.control else (entry.label if not entry.local else None)
        return status

    @keyword(name="Set Carrier Behaviour")
    def set_carrier_behaviour(
        self,
        *,
        submit_status: str | None = None,
        latency: timedelta | None = None,
        dlr_state: str | None = None,
        dlr_delay: timedelta | None = None,
        dlr_error: int | None = None,
        auto_dlr: bool | None = None,
        max_rate: float | None = None,
        throttle_next: int | None = None,
        destination: str | None = None,
    ) -> dict[str, Any]:
        """Changes how the carrier answers from now on; returns the whole behaviour that now applies.

        Without ``destination`` it changes the default, which every test sharing the carrier sees. With
        ``destination`` (the start of a destination address, e.g. ``254700555``) it adds or changes a *rule*
        that applies only to submits to addresses starting with it, so parallel tests on one carrier do not
        disturb each other: give each test its own numbers and scope its behaviour to them. A rule keeps the
        values given to it (over several calls for the same prefix) and follows the default for the rest;
        the longest matching prefix wins; `Clear Carrier Behaviour` removes it.

        | submit_status | command_status of every submit_sm_resp, e.g. ``ESME_RSYSERR`` or ``0x45`` (default ROK) |
        | latency       | delay before each submit_sm_resp |
        | dlr_state     | state of automatic receipts: DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED, UNKNOWN... |
        | dlr_delay     | delay from submit_sm_resp to its receipt |
        | dlr_error     | ``err:`` of receipts (default 0 for DELIVRD, 1 otherwise) |
        | auto_dlr      | send a receipt for each submit that asks for one (default True) |
        | max_rate      | submits per second; beyond it ``ESME_RTHROTTLED`` (0: no limit) |
        | throttle_next | answer the next N submits with ``ESME_RTHROTTLED`` |
        | destination   | a destination prefix: change only what submits to it get (a rule) |

        | `Set Carrier Behaviour` | dlr_state=UNDELIV | dlr_delay=500ms |
        | `Set Carrier Behaviour` | submit_status=ESME_RSYSERR |
        | `Set Carrier Behaviour` | dlr_state=UNDELIV | destination=254700555 |
        | [Teardown] | `Clear Carrier Behaviour` | destination=254700555 |
        """
        changes: dict[str, Any] = {
            "submit_status": submit_status,
            "latency": latency.total_seconds() if latency is not None else None,
            "dlr_state": dlr_state,
            "dlr_delay": dlr_delay.total_seconds() if dlr_delay is not None else None,
            "dlr_error": dlr_error,
            "auto_dlr": auto_dlr,
            "max_rate": max_rate,
            "throttle_next": throttle_next,
        }
        given = {key: value for key, value in changes.items() if value is not None}
        api = self.ctx.carrier().api
        if destination is not None and destination.strip().lstrip("+"):
            behaviour = api.set_behaviour(destination=destination, **given)
            logger.info(f"Carrier behaviour for destinations starting with '{behaviour['destination']}': {behaviour}")
        else:
            behaviour = api.set_behaviour(**given)
            logger.info(f"Carrier behaviour: {behaviour}")
        return behaviour

    @keyword(name="Clear Carrier Behaviour")
    def clear_carrier_behaviour(self, *, destination: str | None = None) -> int:
        """Removes the destination rule for ``destination`` (see `Set Carrier Behaviour`); returns how many
        rules were removed (0 when there was none, so it is safe in a teardown).

        Without ``destination`` it removes every rule and restores the behaviour the carrier started with,
        which changes what every test sharing the carrier gets: use it in a suite setup or teardown, or under
        a PabotLib lock.

        | `Clear Carrier Behaviour` | destination=254700555 |
        | `Clear Carrier Behaviour` |
        """
        prefix = destination.strip().lstrip("+") if destination is not None else ""
        result = self.ctx.carrier().api.clear_behaviour(destination=prefix or None)
        removed = int(result.get("removed", 0))
        if prefix:
            outcome = "removed" if removed else "was not set"
            logger.info(f"Carrier rule for destinations starting with '{prefix}' {outcome}.")
        else:
            logger.info(f"Carrier behaviour reset to its start; {removed} destination rule(s) removed.")
        return removed

    @keyword(name="Get Carrier Behaviour")
    def get_carrier_behaviour(self, *, destination: str | None = None) -> dict[str, Any]:
        """Returns the carrier's default behaviour, or with ``destination`` (an address) the behaviour a submit
        to it gets, with ``rule`` naming the prefix of the rule that applies (``None``: the default)."""
        api = self.ctx.carrier().api
        if destination is not None and destination.strip():
            return api.behaviour(destination=destination.strip())
        return api.behaviour()

    @keyword(name="Get Carrier Messages")
    def get_carrier_messages(self, *, raw: bool = False) -> list[dict[str, Any]]:
        """Returns what reached the carrier: messages with their parts joined, or with ``raw=True`` every
        submit_sm/data_sm as received (including rejected and throttled ones).

        A message has ``source``, ``destination``, ``text``, ``coding``, ``parts``, ``complete``,
        ``message_ids``, ``system_id``, ``registered_delivery``, ``esm_class``, ``data_coding``, TON/NPI,
        ``scheme`` (``single``, ``udh``, ``sar``) and ``timestamp``. A raw record adds ``status``,
        ``short_message`` (hex), ``udh``/``sar`` (ref, total, seq) and the part's ``text``.
        """
        submits = self.ctx.carrier().api.submits()
        return submits if raw else group_messages(submits)

    @keyword(name="Carrier Should Have Received SMS")
    def carrier_should_have_received_sms(
        self,
        *,
        to: str | None = None,
        sender: str | None = None,
        text: str | None = None,
        text_regex: str | None = None,
        coding: CodingName | None = None,
        parts: int | None = None,
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Waits until the carrier has a complete message matching every given criterion; returns it.

        ``to``/``sender`` match the addresses (a leading ``+`` ignored), ``text`` the whole joined text,
        ``text_regex`` a regular expression searched in it (for texts with times or codes in them),
        ``coding`` ``gsm7``/``ucs2``/``latin1``, ``parts`` the number of parts. On failure the message
        quotes what was expected and lists what the carrier did get.

        | `Carrier Should Have Received SMS` | to=4915100000002 | text=Hello | coding=gsm7 | parts=1 |
        | ${sms}= | `Carrier Should Have Received SMS` | to=${TO} | parts=3 | timeout=10s |
        """
        wanted_coding = parse_coding(coding).label if coding and coding != "auto" else None
        try:
            pattern = re.compile(text_regex) if text_regex is not None else None
        except re.error as error:
            raise ValueError(f"text_regex '{text_regex}' is not a valid regular expression: {error}.") from None
        api = self.ctx.carrier().api
        seconds = self.ctx.seconds(timeout)
        seen: list[dict[str, Any]] = []

        def matches(item: dict[str, Any]) -> bool:
            return (
                item["complete"]
                and (to is None or _number(item["destination"]) == _number(to))
                and (sender is None or _number(item["source"]) == _number(sender))
                and (text is None or item["text"] == text)
                and (pattern is None or pattern.search(item["text"]) is not None)
                and (wanted_coding is None or item["coding"] == wanted_coding)
                and (parts is None or item["parts"] == parts)
            )

        def find() -> dict[str, Any] | None:
            seen[:] = group_messages(api.submits())
            return next((item for item in seen if matches(item)), None)

        found = self.ctx.wait_for(find, seconds)
        if found is not None:
            logger.info(f"Carrier received {describe_message(found)}")
            return found
        expected = ", ".join(
            f"{name} {value!r}"
            for name, value in (
                ("to", to),
                ("from", sender),
                ("text", text),
                ("text matching", text_regex),
                ("coding", wanted_coding),
                ("parts", parts),
            )
            if value is not None
        )
        listed = "\n".join(f"  {describe_message(item)}" for item in seen[-MAX_LISTED:]) or "  (nothing)"
        more = f" (last {MAX_LISTED} shown)" if len(seen) > MAX_LISTED else ""
        raise AssertionError(
            message
            or f"The carrier should have received an SMS with {expected or 'anything'} within {seconds:g} s, "
            f"but it got {len(seen)} message(s){more}:\n{listed}"
        )

    @keyword(name="Carrier Message Count Should Be")
    def carrier_message_count_should_be(
        self,
        expected: int,
        *,
        to: str | None = None,
        raw: bool = False,
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> None:
        """Waits up to ``timeout`` for the carrier to hold exactly ``expected`` messages (``raw=True``: submit
        PDUs of any status), only those for ``to`` when given; fails at once when there are already more.

        Parallel tests share the carrier: count by ``to`` (a number of the test's own) unless the carrier is
        the test's alone.

        | `Carrier Message Count Should Be` | 3 |
        | `Carrier Message Count Should Be` | 1000 | to=${recipient} | timeout=60s |
        """
        api = self.ctx.carrier().api
        seconds = self.ctx.seconds(timeout)
        counts: list[int] = [0]

        def count() -> bool:
            submits = api.submits()
            items = submits if raw else group_messages(submits)
            if to is not None:
                items = [item for item in items if _number(item["destination"]) == _number(to)]
            counts[0] = len(items)
            return counts[0] >= expected

        self.ctx.wait_for(count, seconds)
        if counts[0] != expected:
            what = "submit PDUs" if raw else "messages"
            scope = f" for {to}" if to is not None else ""
            raise AssertionError(
                message
                or f"The carrier should have {expected} {what}{scope} but it has {counts[0]} (waited {seconds:g} s)."
            )

    @keyword(name="Clear Carrier Messages")
    def clear_carrier_messages(self) -> int:
        """Forgets everything the carrier recorded; returns how many submit PDUs were dropped."""
        cleared = self.ctx.carrier().api.clear()
        logger.info(f"Cleared {cleared} recorded submit(s) at the carrier.")
        return cleared

    @keyword(name="Carrier Sends MO SMS")
    def carrier_sends_mo_sms(
        self,
        source: str,
        destination: str,
        text: str,
        *,
        coding: CodingName = "auto",
        system_id: str | None = None,
    ) -> dict[str, Any]:
        """Sends a mobile-originated SMS from the carrier to a bound receiver (the gateway's connector).

        Long texts go in UDH-concatenated parts (GSM7 153 / UCS2 67 characters each). With ``system_id``
        only that account's binds get it. With no receiver bound it is queued until one binds. Returns
        ``parts``, ``coding``, ``queued`` and the ``deliveries``.

        | `Carrier Sends MO SMS` | 4915100000002 | ${SHORT_CODE} | STOP |
        | `Carrier Sends MO SMS` | 4915100000002 | ${SHORT_CODE} | Привет | coding=ucs2 |
        """
        result = self.ctx.carrier().api.send_mo(source, destination, text, coding=coding, system_id=system_id)
        state = "queued until a receiver binds" if result["queued"] else "sent"
        logger.info(
            f"Carrier MO from '{source}' to '{destination}' ({result['coding']}, {result['parts']} part(s)) {state}."
        )
        return result

    @keyword(name="Carrier Sends Delivery Receipt")
    def carrier_sends_delivery_receipt(
        self, message_id: str, *, state: str = "DELIVRD", error: int | None = None
    ) -> dict[str, Any]:
        """Sends a delivery receipt for a message id the carrier gave out (or any id), now.

        The receipt is a deliver_sm with esm_class 0x04, the text ``id:... stat:STATE err:...`` and the TLVs
        ``receipted_message_id`` and ``message_state``.

        | `Carrier Sends Delivery Receipt` | ${sms}[message_ids][0] | state=EXPIRED |
        """
        result = self.ctx.carrier().api.send_dlr(message_id, state=state, error=error)
        logger.info(
            f"Carrier receipt for '{message_id}': {result.get('state')} ({'queued' if result['queued'] else 'sent'})."
        )
        return result

    @keyword(name="Carrier Drops All Connections")
    def carrier_drops_all_connections(self) -> int:
        """Closes every ESME connection at the carrier without unbind (a link fault); returns how many."""
        dropped = self.ctx.carrier().api.drop_connections()
        logger.info(f"Carrier dropped {dropped} connection(s).")
        return dropped

    @keyword(name="Wait Until Carrier Is Bound")
    def wait_until_carrier_is_bound(
        self, *, system_id: str | None = None, timeout: timedelta | None = None
    ) -> dict[str, Any]:
        """Waits until an ESME (e.g. the gateway's connector) is bound to the carrier; returns the bind.

        | `Wait Until Carrier Is Bound` | system_id=gateway | timeout=30s |
        """
        api = self.ctx.carrier().api
        seconds = self.ctx.seconds(timeout)
        seen: list[dict[str, Any]] = []

        def bound() -> dict[str, Any] | None:
            seen[:] = api.binds()
            return next((b for b in seen if system_id is None or b["system_id"] == system_id), None)

        found = self.ctx.wait_for(bound, seconds)
        if found is None:
            names = ", ".join(f"{b['system_id']} ({b['mode']})" for b in seen) or "none"
            who = f" as {system_id!r}" if system_id else ""
            raise AssertionError(f"No bind{who} at the carrier within {seconds:g} s; binds: {names}.")
        return found

    @keyword(name="Get Carrier Deliveries")
    def get_carrier_deliveries(self) -> list[dict[str, Any]]:
        """Returns every deliver_sm the carrier sent or queued: ``kind`` (``dlr``/``mo``), ``message_id``,
        ``state``, ``status`` (the ESME's deliver_sm_resp status), ``queued``, ``sent_to``, ``sequence``."""
        return self.ctx.carrier().api.deliveries()


def _number(value: str) -> str:
    return value.strip().lstrip("+")
