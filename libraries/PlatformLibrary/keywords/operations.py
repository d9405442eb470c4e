"""Keywords about the calls themselves: the API key in use, expected rejections, timings, health."""

from __future__ import annotations

from datetime import timedelta
from html import escape
from typing import Any

from robot.api import logger
from robot.api.types import Secret
from robotlibcore import keyword
from telco_common.rejection import expect_refusal

from PlatformLibrary.keywords.base import PlatformComponent


class OperationKeywords(PlatformComponent):
    @keyword
    def use_platform_api_key(self, api_key: Secret | str) -> Secret:
        """Sends later calls with another API key (header ``apikey``; empty for none); returns the one before,
        as a Robot ``Secret`` (give it back to this keyword to restore it).

        Each test acts as its own customer: create a gateway consumer with a key-auth credential and use its
        key. Both keys are masked in the log.

        | ${credential}= | Create Key Auth Credential | ${consumer} |
        | ${previous}= | `Use Platform API Key` | ${credential}[key] |
        """
        previous = Secret(self.ctx.api_key)
        self.ctx.set_api_key(api_key)
        logger.info("Platform calls now use " + ("another API key (***)." if self.ctx.api_key else "no API key."))
        return previous

    @keyword
    def platform_should_reject(self, status: int, field: str | None, keyword_name: str, *args: Any) -> dict[str, Any]:
        """Runs a PlatformLibrary keyword that must be refused with HTTP ``status`` naming ``field``.

        Returns the error (``status``, ``code``, ``field``, ``message``). Fails when the keyword succeeds, fails
        for another reason, or the status or field differ. ``NONE`` as ``field`` accepts any field.

        | `Platform Should Reject` | 403 | account | Create Trunk | main | +254711000001 |
        | `Platform Should Reject` | 422 | variables.code | Render SMS Template | ${template}[id] |
        """
        return expect_refusal(
            "the platform API",
            status,
            field,
            keyword_name,
            args,
            last_error=lambda: self.ctx.last_error,
            forget_error=self._forget_error,
        )

    def _forget_error(self) -> None:
        self.ctx.last_error = None

    @keyword
    def get_platform_health(self) -> dict[str, Any]:
        """Returns the platform API's health document (``status``, ``database``) through the gateway."""
        health: dict[str, Any] = self.ctx.request("GET", f"{self.ctx.service_root}/health", expected=(200,))
        return health

    @keyword
    def get_platform_operation_timings(self) -> list[dict[str, Any]]:
        """Returns this test's platform API calls: ``keyword``, ``method``, ``path``, ``status``, ``ms``."""
        return [
            {"keyword": op.keyword, "method": op.method, "path": op.path, "status": op.status, "ms": op.seconds * 1000}
            for op in self.ctx.operations
        ]

    @keyword
    def platform_operations_should_have_completed_within(self, limit: timedelta) -> None:
        """Checks that every platform API call of the current test took less than ``limit`` (the plan's
        "cross-service latency < 500 ms"), logging them as a table; fails naming every slow call.

        | `Platform Operations Should Have Completed Within` | 500ms |
        """
        operations = self.ctx.operations
        if not operations:
            raise AssertionError("No platform API call was made in this test, so none can be timed.")
        rows = "".join(
            f"<tr><td>{escape(op.label)}</td><td style='text-align:right'>{op.seconds * 1000:.1f}</td></tr>"
            for op in operations
        )
        logger.info(f"<table><tr><th>operation</th><th>ms</th></tr>{rows}</table>", html=True)
        slow = [op for op in operations if op.seconds >= limit.total_seconds()]
        if slow:
            listed = "\n".join(f"  {op.label}: {op.seconds * 1000:.0f} ms" for op in slow[:20])
            raise AssertionError(
                f"{len(slow)} of {len(operations)} platform API calls should have taken less than "
                f"{limit.total_seconds():g} s but took longer:\n{listed}"
            )
