"""State the keyword components share: the receivers by alias, the default timeout and auto-stop scopes."""

from __future__ import annotations

from datetime import timedelta

from robot.api import logger
from robot.utils import ConnectionCache

from WebhookLibrary.errors import ReceiverNotFoundError
from WebhookLibrary.server import WebhookReceiver


class WebhookContext:
    """Receivers are kept in a ``ConnectionCache``: by alias, the last started one being current."""

    def __init__(self, *, timeout: timedelta, auto_stop: bool) -> None:
        self.timeout = timeout
        self.auto_stop = auto_stop
        self.receivers: ConnectionCache[WebhookReceiver] = ConnectionCache(
            "No webhook receiver is started. Use `Start Webhook Receiver` first."
        )
        self.scopes: list[str] = []  # ids of the running suites and test, innermost last
        self.started_in: dict[int, str] = {}  # id(receiver) -> scope id it was started in

    def register(self, receiver: WebhookReceiver) -> None:
        self.receivers.register(receiver, alias=receiver.alias)
        if self.scopes:
            self.started_in[id(receiver)] = self.scopes[-1]

    def find(self, alias: str) -> WebhookReceiver | None:
        """The newest receiver started with ``alias`` (case and space insensitive), or ``None``."""
        try:
            receiver = self.receivers.get_connection(alias)
        except RuntimeError:
            return None
        return receiver if _normal(receiver.alias) == _normal(alias) else None

    def get(self, alias: str | None = None) -> WebhookReceiver:
        """The receiver with ``alias``, or the last started one when ``alias`` is not given."""
        if alias is None:
            try:
                receiver = self.receivers.get_connection()
            except RuntimeError as error:
                raise ReceiverNotFoundError(str(error)) from None
        else:
            found = self.find(alias)
            if found is None:
                raise ReceiverNotFoundError(f"No webhook receiver has alias '{alias}'. {self.known()}")
            receiver = found
        self.report_server_errors(receiver)
        return receiver

    def latest(self) -> list[WebhookReceiver]:
        """The newest receiver of each alias, in start order."""
        by_alias = {receiver.alias: receiver for receiver in self.receivers}
        return list(by_alias.values())

    def known(self) -> str:
        receivers = self.latest()
        if not receivers:
            return "No receiver is started; use `Start Webhook Receiver` first."
        names = ", ".join(f"'{r.alias}' ({r.url}{'' if r.running else ', stopped'})" for r in receivers)
        return f"Started receivers: {names}."

    def report_server_errors(self, receiver: WebhookReceiver) -> None:
        """Log, from the keyword thread, the errors the receiver's server threads kept."""
        for error in receiver.store.take_errors():
            logger.warn(f"Webhook receiver '{receiver.alias}' failed to handle a request: {error}")

    def stop(self, receiver: WebhookReceiver) -> None:
        """Stop one receiver; if it was current, the newest still running one becomes current."""
        if receiver.stop():
            count = len(receiver.store.requests())
            logger.info(f"Stopped webhook receiver '{receiver.alias}' at {receiver.url} after {count} request(s).")
        self.started_in.pop(id(receiver), None)
        if self.receivers.current is receiver:
            running = [r for r in self.receivers if r.running]
            if running:
                self.receivers.current = running[-1]

    def stop_all(self) -> None:
        """Stop every receiver and forget them all; never raises (safe in teardowns)."""
        for receiver in list(self.receivers):
            try:
                self.stop(receiver)
            except Exception as error:  # teardown-safe: report and carry on
                logger.warn(f"Could not stop webhook receiver '{receiver.alias}': {error}")
        self.receivers.empty_cache()
        self.started_in.clear()

    def stop_scope(self, scope: str) -> None:
        """Stop and forget the receivers started while ``scope`` (a suite or test id) was innermost.

        Forgetting them keeps a long ``GLOBAL`` run from holding every test's recorded requests.
        """
        ended = [receiver for receiver in self.receivers if self.started_in.get(id(receiver)) == scope]
        for receiver in ended:
            logger.info(f"Auto-stopping webhook receiver '{receiver.alias}' at the end of its scope.")
            try:
                self.stop(receiver)
            except Exception as error:  # never fail a test's or suite's end for a cleanup
                logger.warn(f"Could not stop webhook receiver '{receiver.alias}': {error}")
        if ended:
            self._forget(ended)

    def _forget(self, gone: list[WebhookReceiver]) -> None:
        current = self.receivers.current
        kept = [receiver for receiver in self.receivers if receiver not in gone]
        self.receivers.empty_cache()
        for receiver in kept:
            self.receivers.register(receiver, alias=receiver.alias)
        running = [receiver for receiver in kept if receiver.running]
        if current in kept:
            self.receivers.current = current
        elif running:
            self.receivers.current = running[-1]
        else:
            self.receivers.current_index = None


def _normal(alias: str) -> str:
    return alias.lower().replace(" ", "")
