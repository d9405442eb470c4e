"""BillingLibrary against the real billing service (uvicorn on a free loopback port) and a closed port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
import uvicorn
from assertionengine import AssertionOperator
from BillingLibrary import BillingApiError, BillingLibrary, BillingUnreachableError
from BillingLibrary.context import BillingContext, Operation
from BillingLibrary.keywords.base import money
from BillingLibrary.keywords.operations import OperationKeywords
from telco_common.rejection import check_refusal

from lab.billing.app import create_app

TOKEN = "unit-test-token-5e1f"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("billing") / "billing.db"
    app = create_app(f"sqlite:///{database}", TOKEN, fault_injection=True)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "billing service did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/api/v1"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def library(base_url: str) -> BillingLibrary:
    return BillingLibrary(base_url=base_url, token=TOKEN)


def _customer(library: BillingLibrary, tag: str) -> dict:
    return library.create_customer(
        "Ann", f"ann-{tag}-{time.time_ns()}@example.com", f"+2547{time.time_ns() % 10**9:09d}"
    )


def test_keywords_speak_the_api(library: BillingLibrary) -> None:
    customer = _customer(library, "journey")
    package = library.create_package("Daily", Decimal("50"), site=None)
    voucher = library.create_voucher(package["id"], customer_id=customer["id"])
    payment = library.create_payment(customer["id"], Decimal("50.00"), "mpesa", voucher_id=voucher["id"])
    library.complete_payment(payment["id"])
    assert library.get_voucher_status(voucher["id"], AssertionOperator["=="], "sold") == "sold"
    assert library.get_payment_status(payment["id"], AssertionOperator["=="], "completed") == "completed"
    assert library.get_invoice_for_payment(payment["id"])["amount"] == "50.00"
    assert library.get_customer_balance(customer["id"]) == Decimal("0.00")


def test_api_error_quotes_the_message_status_and_field(library: BillingLibrary) -> None:
    customer = _customer(library, "error")
    with pytest.raises(BillingApiError) as caught:
        library.create_payment(customer["id"], Decimal("0"), "card")
    error = caught.value
    assert (error.status, error.field) == (422, "amount")
    assert str(error).startswith("Billing (POST /payments) failed with HTTP 422 (field 'amount'): ")
    assert "amount" in error.api_message


def test_retrying_getter_reports_expected_and_actual(library: BillingLibrary) -> None:
    customer = _customer(library, "retry")
    with pytest.raises(AssertionError) as caught:
        library.get_customer_balance(
            customer["id"], AssertionOperator["=="], Decimal("5.00"), timeout=timedelta(milliseconds=300)
        )
    assert "0.00" in str(caught.value)
    assert "5.00" in str(caught.value)
    assert "retried for 0.3 s" in str(caught.value)


def test_wrong_token_is_refused_and_never_logged(base_url: str) -> None:
    library = BillingLibrary(base_url=base_url, token="not-the-token")
    with pytest.raises(BillingApiError) as caught:
        library.get_dashboard()
    assert caught.value.status == 401
    assert "not-the-token" not in str(caught.value)


def test_unreachable_service_fails_fast_naming_the_url_and_the_fix() -> None:
    port = _free_port()
    library = BillingLibrary(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=timedelta(seconds=2))
    started = time.monotonic()
    with pytest.raises(BillingUnreachableError) as caught:
        library.get_dashboard()
    assert time.monotonic() - started < 3
    assert f"http://127.0.0.1:{port}/api/v1" in str(caught.value)
    assert "BILLING_URL" in str(caught.value)


def test_bad_import_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="is not an HTTP URL"):
        BillingLibrary(base_url="127.0.0.1:18080")
    with pytest.raises(ValueError, match="timeout must be positive"):
        BillingLibrary(base_url="http://127.0.0.1:1/api/v1", timeout=timedelta(0))


def test_debug_text_masks_every_token_ever_used() -> None:
    context = BillingContext("http://127.0.0.1:1/api/v1", "first-secret", timedelta(seconds=1))
    context.set_token("second-secret")
    text = context._describe("GET", "http://x/?t=first-secret", {}, {"token": "second-secret"}, _Response(), {})
    assert "first-secret" not in text
    assert "second-secret" not in text
    assert "***" in text


def test_operations_over_the_limit_are_named() -> None:
    context = BillingContext("http://127.0.0.1:1/api/v1", "", timedelta(seconds=1))
    context.operations = [
        Operation("Create Customer", "POST", "/customers", 201, 0.010),
        Operation("Get Dashboard", "GET", "/dashboard", 200, 2.5),
    ]
    keywords = OperationKeywords(context)
    with pytest.raises(AssertionError) as caught:
        keywords.billing_operations_should_have_completed_within(timedelta(seconds=2))
    assert str(caught.value) == (
        "1 of 2 billing operations should have taken less than 2 s but took longer:\n"
        "  Get Dashboard: GET /dashboard -> 200: 2500 ms"
    )
    context.operations = context.operations[:1]
    assert keywords.billing_operations_should_have_completed_within(timedelta(seconds=2))["count"] == 1


def test_rejection_checks_status_and_field() -> None:
    error = BillingApiError("Create Customer (POST /customers)", 409, {"error": {"field": "email", "message": "taken"}})
    assert check_refusal("Create Customer", error, 409, "email")["field"] == "email"
    with pytest.raises(AssertionError, match="should have been rejected with HTTP 422 but got HTTP 409: taken"):
        check_refusal("Create Customer", error, 422, "email")
    with pytest.raises(AssertionError, match="naming field 'phone' but the API named 'email'"):
        check_refusal("Create Customer", error, 409, "phone")


@pytest.mark.parametrize(("given", "sent"), [(Decimal("10"), "10.00"), ("7.5", "7.50"), (3, "3.00")])
def test_money_is_sent_with_two_places(given: object, sent: str) -> None:
    assert money(given) == sent  # type: ignore[arg-type]


def test_money_refuses_non_numbers() -> None:
    with pytest.raises(ValueError, match="is not a number"):
        money(Decimal("NaN"))


class _Response:
    status_code = 200
