"""Keywords that read recorded requests: wait for one, list them, count them, rule them out."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any, cast

from robot.api import logger
from robot.utils import DotDict
from robotlibcore import keyword
from telco_common import wait_until

from WebhookLibrary.context import WebhookContext
from WebhookLibrary.formatting import details, listing, one_line
from WebhookLibrary.matching import WebhookFilter
from WebhookLibrary.recording import WebhookRequest
from WebhookLibrary.server import WebhookReceiver

_POLL = timedelta(milliseconds=20)


class RequestKeywords:
    def __init__(self, ctx: WebhookContext) -> None:
        self.ctx = ctx

    @keyword(tags=["check", "wait"])
    def wait_until_webhook_received(
        self,
        alias: str | None = None,
        timeout: timedelta | None = None,
        *,
        path: str | None = None,
        method: str | None = None,
        json: dict[str, Any] | None = None,
        form: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        body_regex: str | None = None,
        message: str | None = None,
        **filters: Any,
    ) -> DotDict:
        """Waits until a request matching the filters arrives, and returns it as a dictionary.

        Returns the earliest matching request that no earlier wait has returned, whether it arrived before
        or during this call; so two waits with the same filters return two different callbacks. The
        request is then marked as returned (`Get Webhook Requests` and `Webhook Count Should Be` still see
        it). See `Filters` for the filter arguments and `Recorded requests` for the dictionary.

        ``timeout`` defaults to the library's ``timeout``. On timeout the keyword fails with the expected
        filters and the requests that did arrive (at most 20 lines), or with ``message`` if given.

        | ${dlr} = | `Wait Until Webhook Received` | dlr | 10s | id=${message_id} | message_status=DELIVRD |
        | Should Be Equal | ${dlr.form.err} | 000 |
        | ${cdr} = | `Wait Until Webhook Received` | cdr | method=POST | call.id=${call_id} |
        """
        receiver = self.ctx.get(alias)
        wanted = _filter(path, method, json, form, headers, body_regex, filters)
        timeout = self.ctx.timeout if timeout is None else timeout
        stopped = "" if receiver.running else " (it is stopped)"
        try:
            request = wait_until(  # returns only once the lambda gives a request, never None
                lambda: cast(WebhookRequest, receiver.store.consume_first(wanted)),
                timeout if receiver.running else timedelta(0),
                interval=_POLL,
                message=f"No webhook request{_with(wanted)} reached receiver '{receiver.alias}'{stopped}",
            )
        except AssertionError as error:
            raise AssertionError(message or f"{error}\n{_arrivals(receiver)}") from None
        logger.info(f"Webhook receiver '{receiver.alias}' got {one_line(request)}")
        logger.debug(details(request))
        return request.to_dict()

    @keyword(tags=["getter"])
    def get_webhook_requests(
        self,
        alias: str | None = None,
        *,
        path: str | None = None,
        method: str | None = None,
        json: dict[str, Any] | None = None,
        form: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        body_regex: str | None = None,
        **filters: Any,
    ) -> list[DotDict]:
        """Returns the recorded requests matching the filters (all by default), oldest first.

        Does not wait and does not mark requests as returned. See `Filters` and `Recorded requests`.

        | ${all} = | `Get Webhook Requests` | dlr |
        | ${failed} = | `Get Webhook Requests` | dlr | message_status=UNDELIV |
        """
        receiver = self.ctx.get(alias)
        wanted = _filter(path, method, json, form, headers, body_regex, filters)
        matching = [request for request in receiver.store.requests() if wanted(request)]
        logger.info(f"Webhook receiver '{receiver.alias}' has {len(matching)} request(s){_with(wanted)}.")
        for request in matching:
            logger.debug(one_line(request))
        return [request.to_dict() for request in matching]

    @keyword(tags=["check"])
    def webhook_count_should_be(
        self,
        count: int,
        alias: str | None = None,
        *,
        timeout: timedelta = timedelta(0),
        path: str | None = None,
        method: str | None = None,
        json: dict[str, Any] | None = None,
        form: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        body_regex: str | None = None,
        message: str | None = None,
        **filters: Any,
    ) -> None:
        """Checks that exactly ``count`` recorded requests match the filters, including returned ones.

        With ``timeout`` the keyword waits until at least ``count`` requests match, then checks that there
        are not more; it does not wait out the timeout to rule out late extra requests (follow it with
        `Webhook Should Not Be Received` for that). See `Filters`.

        | `Webhook Count Should Be` | 2 | dlr | timeout=5s | id=${message_id} |
        | `Webhook Count Should Be` | 0 | dlr | message_status=UNDELIV |
        """
        if count < 0:
            raise ValueError(f"count={count} is negative; give 0 or more.")
        receiver = self.ctx.get(alias)
        wanted = _filter(path, method, json, form, headers, body_regex, filters)
        with contextlib.suppress(AssertionError):  # the count is checked, and reported, below
            wait_until(lambda: receiver.store.count(wanted) >= count, timeout, interval=_POLL, message="")
        actual = receiver.store.count(wanted)
        if actual != count:
            waited = f" (waited {timeout.total_seconds():g} s)" if timeout else ""
            raise AssertionError(
                message
                or f"Webhook receiver '{receiver.alias}' should have received {count} request(s){_with(wanted)} "
                f"but received {actual}{waited}.\n{_arrivals(receiver)}"
            )
        logger.info(f"Webhook receiver '{receiver.alias}' received {count} request(s){_with(wanted)}.")

    @keyword(tags=["check", "wait"])
    def webhook_should_not_be_received(
        self,
        alias: str | None = None,
        within: timedelta = timedelta(seconds=2),
        *,
        path: str | None = None,
        method: str | None = None,
        json: dict[str, Any] | None = None,
        form: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        body_regex: str | None = None,
        message: str | None = None,
        **filters: Any,
    ) -> None:
        """Checks that no request matching the filters arrives within ``within``, failing as soon as one does.

        Requests already returned by `Wait Until Webhook Received` do not count, so a wait followed by this
        keyword checks that a callback came exactly once. Requests that arrived earlier and were not
        returned do count. The keyword takes the whole ``within`` when it passes. See `Filters`.

        | ${dlr} = | `Wait Until Webhook Received` | dlr | id=${message_id} |
        | `Webhook Should Not Be Received` | dlr | 3s | id=${message_id} | # no duplicate DLR |
        """
        receiver = self.ctx.get(alias)
        wanted = _filter(path, method, json, form, headers, body_regex, filters)
        try:
            request = wait_until(  # returns only once the lambda gives a request, never None
                lambda: cast(WebhookRequest, receiver.store.first_unconsumed(wanted)),
                within,
                interval=_POLL,
                message="",
            )
        except AssertionError:
            logger.info(
                f"Webhook receiver '{receiver.alias}' got no request{_with(wanted)} "
                f"in {within.total_seconds():g} s, as expected."
            )
            return
        logger.debug(details(request))
        raise AssertionError(
            message
            or f"Webhook receiver '{receiver.alias}' should not have received a request{_with(wanted)} "
            f"but got {one_line(request)}"
        )

    @keyword(tags=["receiver"])
    def clear_webhook_requests(self, alias: str | None = None) -> None:
        """Forgets the requests the receiver ``alias`` (the current one by default) has recorded so far.

        | `Clear Webhook Requests` | dlr |
        """
        receiver = self.ctx.get(alias)
        cleared = receiver.store.clear()
        logger.info(f"Cleared {cleared} request(s) recorded by webhook receiver '{receiver.alias}'.")


def _filter(
    path: str | None,
    method: str | None,
    json: dict[str, Any] | None,
    form: dict[str, Any] | None,
    headers: dict[str, Any] | None,
    body_regex: str | None,
    fields: dict[str, Any],
) -> WebhookFilter:
    return WebhookFilter(
        path=path,
        method=method,
        json=json if json is not None else {},
        form=form if form is not None else {},
        headers=headers if headers is not None else {},
        body_regex=body_regex,
        fields=fields,
    )


def _with(wanted: WebhookFilter) -> str:
    described = wanted.describe()
    return f" with {described}" if described else ""


def _arrivals(receiver: WebhookReceiver) -> str:
    return listing(receiver.store.snapshot(), receiver.store.rejected())
