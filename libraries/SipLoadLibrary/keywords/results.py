"""Keywords that read a SIPp instance's result, with inline assertions (AssertionEngine)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from assertionengine import AssertionOperator
from robotlibcore import keyword
from telco_common import retry_assertion

from SipLoadLibrary.keywords.base import SippComponent


def pick(result: dict[str, Any], key: str) -> Any:
    """``result[key]``, where ``key`` may be a dotted path such as ``response_times_ms.setup.p95``."""
    value: Any = result
    walked = []
    for part in key.split("."):
        walked.append(part)
        if not isinstance(value, dict) or part not in value:
            where = ".".join(walked[:-1]) or "the result"
            choices = ", ".join(sorted(value)) if isinstance(value, dict) else "(not a dictionary)"
            raise ValueError(f"SIPp result has no '{'.'.join(walked)}'. Keys of {where}: {choices}.")
        value = value[part]
    return value


class ResultKeywords(SippComponent):
    @keyword(name="Get SIPp Result")
    def get_sipp_result(
        self,
        alias: str | None = None,
        key: str | None = None,
        assertion_operator: AssertionOperator | None = None,
        expected: Any = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str | None = None,
    ) -> Any:
        """Returns SIPp instance ``alias``'s result (default: the last started), or one ``key`` of it.

        While the instance runs the figures are those of its latest statistics row (written every second);
        after it ended they are final. With an operator the value is checked, and re-read until ``timeout``.

        The result is a dictionary:
        | = Key = | = Meaning = |
        | ``alias``, ``role``, ``scenario`` | the instance |
        | ``pid``, ``address``, ``target``, ``folder`` | its PID, its SIP address, what it calls, its files |
        | ``state`` | ``running``, ``finished``, ``stopped`` (asked to quit) or ``killed`` |
        | ``exit_code``, ``exit_reason`` | 0 all calls succeeded, 1 some failed, 97 stopped, 99 no calls, 255 fatal |
        | ``calls_created``, ``successful``, ``failed`` | call counters, cumulated |
        | ``current_calls``, ``retransmissions`` | open calls now; retransmitted messages, cumulated |
        | ``calls_per_second`` | SIPp's cumulated call rate |
        | ``peak_calls_per_second`` | the best one-second period |
        | ``successful_per_second`` | successful calls per second of the run |
        | ``target_rate`` | the rate asked for |
        | ``failed_by_reason`` | failed calls per SIPp reason, e.g. ``{'UnexpectedMessage': 2}`` |
        | ``response_times_ms`` | per response time (``setup``: INVITE to 200): ``mean``, ``stdev`` and, |
        | | with ``-trace_rtt``, ``count``, ``p50``, ``p95``, ``p99``, ``max`` (whole ms) |
        | ``call_length_ms`` | mean call length |
        | ``elapsed_s``, ``run_s`` | SIPp's elapsed time; wall time since the start |

        ``key`` may be a dotted path into it.

        | ${result}= | `Get SIPp Result` | uac1 |
        | `Get SIPp Result` | uac1 | response_times_ms.setup.p95 | < | 50 |
        | `Get SIPp Result` | sink | successful | >= | 100 | timeout=10s |
        """
        instance = self.ctx.get(alias)
        if key is None and assertion_operator is None:
            return instance.result()
        if key is None:
            raise ValueError("An assertion needs a key, e.g. `Get SIPp Result    uac1    failed    ==    0`.")
        return retry_assertion(
            lambda: pick(instance.result(), key),
            assertion_operator,
            expected,
            timeout=timeout,
            message=f"SIPp '{instance.alias}' {key}",
            custom_message=message,
            interval=timedelta(milliseconds=250),
        )

    @keyword(name="SIPp Result Should Be")
    def sipp_result_should_be(
        self,
        key: str,
        assertion_operator: AssertionOperator,
        expected: Any,
        *,
        alias: str | None = None,
        timeout: timedelta = timedelta(0),
        message: str | None = None,
    ) -> Any:
        """Checks one figure of SIPp instance ``alias``'s result (default: the last started); returns the value.

        The failure quotes both sides, e.g. ``SIPp 'uac1' failed '3' (int) should be equal to '0' (int)``.
        See `Get SIPp Result` for the keys.

        | `SIPp Result Should Be` | failed | == | 0 |
        | `SIPp Result Should Be` | calls_per_second | >= | 95 | alias=load |
        | `SIPp Result Should Be` | response_times_ms.setup.p99 | < | 100 | message=Call setup too slow |
        """
        return self.get_sipp_result(alias, key, assertion_operator, expected, timeout=timeout, message=message)
