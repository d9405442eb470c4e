"""Keywords that start, configure and stop webhook receivers."""

from __future__ import annotations

from datetime import timedelta

from robot.api import logger
from robotlibcore import keyword

from WebhookLibrary.context import WebhookContext
from WebhookLibrary.errors import ReceiverStartError
from WebhookLibrary.server import LOOPBACK_HOSTS, WebhookReceiver, WebhookResponse


class ReceiverKeywords:
    def __init__(self, ctx: WebhookContext) -> None:
        self.ctx = ctx

    @keyword(tags=["receiver"])
    def start_webhook_receiver(
        self,
        alias: str = "default",
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/",
        *,
        response_status: int = 200,
        response_body: str = "ACK/Jasmin",
    ) -> str:
        """Starts an HTTP endpoint that records every request, and returns its base URL.

        The receiver serves each request in its own thread and accepts ``GET``, ``POST`` and ``PUT`` on any
        path under ``path`` (others get 404 and are only mentioned in failure messages). It answers
        ``response_status`` with ``response_body``; the default ``200`` with ``ACK/Jasmin`` is what
        Jasmin's DLR thrower needs, otherwise it sends the DLR again. Change it with `Set Webhook Response`.

        | =Argument= | =Meaning= |
        | ``alias`` | Name for the other keywords' ``alias`` argument. Starting an alias that is running fails. |
        | ``host`` | Address to listen on: loopback by default; another only when the platform cannot reach it. |
        | ``port`` | ``0`` (default) takes a free port; read it from the returned URL. |
        | ``path`` | Base path, e.g. ``/dlr/``; the URL returned ends with it. |

        The receiver becomes the current one (used when ``alias`` is not given) and, with the library's
        ``auto_stop``, stops when the test or suite that started it ends.

        | ${url} = | `Start Webhook Receiver` | dlr | path=/dlr/ |
        | Submit SMS | ... | dlr_url=${url} | dlr_method=POST |
        | ${dlr} = | `Wait Until Webhook Received` | dlr | id=${message_id} | message_status=DELIVRD |
        """
        running = self.ctx.find(alias)
        if running is not None and running.running:
            raise ReceiverStartError(
                f"Webhook receiver '{alias}' is already running at {running.url}. "
                "Stop it with `Stop Webhook Receiver` or use another alias."
            )
        if not host:
            raise ReceiverStartError("Host must not be empty; use '127.0.0.1' or '::1'.")
        response = WebhookResponse(response_status, response_body)
        try:
            receiver = WebhookReceiver(alias, host=host, port=port, base_path=path, response=response)
        except OSError as error:
            raise ReceiverStartError(
                f"Cannot listen on {host}:{port} for webhook receiver '{alias}': {error}. Use port=0 for a free port."
            ) from None
        self.ctx.register(receiver)
        where = "" if host in LOOPBACK_HOSTS else " (not loopback: reachable from other hosts)"
        logger.info(f"Webhook receiver '{alias}' is listening at {receiver.url}{where}.")
        return receiver.url

    @keyword(name="Get Webhook Receiver URL", tags=["receiver"])
    def get_webhook_receiver_url(self, alias: str | None = None) -> str:
        """Returns the base URL of the receiver ``alias`` (the current one by default).

        | ${url} = | `Get Webhook Receiver URL` | dlr |
        """
        return self.ctx.get(alias).url

    @keyword(tags=["receiver"])
    def set_webhook_response(
        self,
        status: int = 200,
        body: str = "ACK/Jasmin",
        *,
        delay: timedelta = timedelta(0),
        count: int | None = None,
        alias: str | None = None,
    ) -> None:
        """Sets what the receiver answers, to make it slow or failing (e.g. to test the platform's retries).

        Without ``count`` the response replaces the standing one. With ``count`` it is used for the next
        ``count`` requests only, after earlier one-shot responses, then the standing response applies again.
        ``delay`` holds each answer back (the request is recorded on arrival, before the delay).

        | `Set Webhook Response` | 500 | busy | count=2 | # two failures, then ACK/Jasmin again |
        | `Set Webhook Response` | 200 | ACK/Jasmin | delay=3s | # slower than the caller's timeout |
        """
        if count is not None and count < 1:
            raise ValueError(f"count={count} answers no request; give 1 or more, or leave it out.")
        receiver = self.ctx.get(alias)
        receiver.responses.set(WebhookResponse(status, body, delay), count)
        times = "from now on" if count is None else f"for the next {count} request(s)"
        delayed = f" after {delay.total_seconds():g} s" if delay else ""
        logger.info(f"Webhook receiver '{receiver.alias}' answers {status} '{body}'{delayed} {times}.")

    @keyword(tags=["receiver"])
    def stop_webhook_receiver(self, alias: str | None = None) -> None:
        """Stops the receiver ``alias`` (the current one by default) and frees its port.

        Its recorded requests can still be read with `Get Webhook Requests` and checked with
        `Webhook Count Should Be`. Stopping a stopped receiver does nothing.
        """
        self.ctx.stop(self.ctx.get(alias))

    @keyword(tags=["receiver"])
    def stop_all_webhook_receivers(self) -> None:
        """Stops every receiver and forgets them; never fails, so it fits any teardown.

        | Suite Teardown | `Stop All Webhook Receivers` |
        """
        self.ctx.stop_all()
