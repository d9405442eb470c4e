"""The shared pieces: waits, masking, test-data names."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from assertionengine import AssertionOperator
from telco_common import TestDataNamespace, redact, retry_assertion, wait_until
from telco_common.masking import masked_headers
from telco_common.waiting import as_type_of


def test_retry_assertion_returns_once_the_value_matches() -> None:
    values = itertools.count()
    assert (
        retry_assertion(
            lambda: next(values),
            AssertionOperator[">="],
            3,
            timeout=timedelta(seconds=2),
            interval=timedelta(milliseconds=1),
        )
        >= 3
    )


def test_retry_assertion_without_operator_reads_once() -> None:
    values = itertools.count()
    assert retry_assertion(lambda: next(values), None, None, timeout=timedelta(seconds=5)) == 0


def test_retry_assertion_failure_quotes_both_sides_and_the_wait() -> None:
    with pytest.raises(AssertionError) as caught:
        retry_assertion(
            lambda: "UNDELIV",
            AssertionOperator["=="],
            "DELIVRD",
            timeout=timedelta(milliseconds=200),
            message="Receipt state",
        )
    text = str(caught.value)
    assert "UNDELIV" in text
    assert "DELIVRD" in text
    assert "retried for 0.2 s" in text


def test_wait_until_names_the_last_error() -> None:
    def broken() -> bool:
        raise ConnectionError("refused")

    with pytest.raises(AssertionError, match=r"Service up \(waited 0.1 s\). Last error: refused"):
        wait_until(broken, timedelta(milliseconds=100), message="Service up")


def test_redact_hides_every_secret() -> None:
    assert redact("user=a pass=s3cret key=k3y", ["s3cret", "k3y", None, ""]) == "user=a pass=*** key=***"
    assert masked_headers({"Authorization": "Bearer x", "apikey": "k", "Accept": "json"}) == {
        "Authorization": "***",
        "apikey": "***",
        "Accept": "json",
    }


def test_namespace_names_differ_between_workers_runs_and_calls() -> None:
    first, second = TestDataNamespace("1", "aaaaaa"), TestDataNamespace("2", "aaaaaa")
    names = {first.name("site"), first.name("site"), second.name("site"), TestDataNamespace("1").name("site")}
    assert len(names) == 4
    assert first.name("site").startswith("site-w1aaaaaa-")


def test_namespace_digits_are_unique_and_sized() -> None:
    namespace = TestDataNamespace("3", "00ff00")
    numbers = {namespace.digits(12) for _ in range(1000)}
    assert len(numbers) == 1000
    assert all(len(n) == 12 and n.isdigit() for n in numbers)
    with pytest.raises(ValueError, match="at least 12"):
        namespace.digits(8)


def test_numbers_differ_between_runs_and_concurrent_workers() -> None:
    earlier = TestDataNamespace("1", started=1_700_000_000)
    later = TestDataNamespace("1", started=1_700_000_001)
    other_worker = TestDataNamespace("2", started=1_700_000_000)
    assert len({earlier.digits(12), later.digits(12), other_worker.digits(12)}) == 3


def test_serial_run_is_named_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PABOTQUEUEINDEX", raising=False)
    assert TestDataNamespace().worker == "s"
    monkeypatch.setenv("PABOTQUEUEINDEX", "4")
    assert TestDataNamespace().worker == "w4"


@pytest.mark.parametrize(
    ("value", "expected", "converted"),
    [(2, "2", 2), (Decimal("1.50"), "1.5", Decimal("1.5")), ("2", "2", "2"), (2, "two", "two"), (True, "1", "1")],
)
def test_text_expected_is_read_as_the_actual_type(value: object, expected: str, converted: object) -> None:
    assert as_type_of(value, expected) == converted
    assert type(as_type_of(value, expected)) is type(converted)


def test_msisdn_prefixes_up_to_eight_digits() -> None:
    from TestDataLibrary import TestDataLibrary

    data = TestDataLibrary()
    assert data.get_unique_msisdn("25410").startswith("25410")
    assert len(data.get_unique_msisdn("12345678")) == 20
    with pytest.raises(ValueError, match="must be 1 to 8 digits"):
        data.get_unique_msisdn("123456789")
