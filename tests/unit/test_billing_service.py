"""The lab billing service (``lab/billing``) against its contract, ``docs/billing-api.md``.

Every test runs on SQLite (a fresh file per test) and, when ``BILLING_TEST_POSTGRES_URL`` is set, on PostgreSQL
(a fresh database per module, emptied before each test). Rejected requests are checked to write nothing by
comparing a full snapshot of every table before and after.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from lab.billing import create_app

with warnings.catch_warnings():  # starlette prefers httpx2; the venv pins httpx
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

TOKEN = "unit-test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TABLES = (
    "customers",
    "balances",
    "packages",
    "vouchers",
    "payments",
    "invoices",
    "transactions",
    "routers",
    "sessions",
)
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
ROOT = Path(__file__).resolve().parents[2]


# --- databases --------------------------------------------------------------------------------------------


@dataclass
class Backend:
    kind: str
    url: str = ""
    engine: sa.Engine | None = None

    def reset(self) -> None:
        """PostgreSQL: empty every billing table and restart the ids, so each test starts from nothing."""
        assert self.engine is not None
        present = set(sa.inspect(self.engine).get_table_names())
        tables = [table for table in TABLES if table in present]
        if tables:
            with self.engine.begin() as connection:
                connection.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


@contextmanager
def _postgres_database(server_url: str) -> Iterator[str]:
    """A new database ``billing_test_<random>`` on the server of ``server_url``; dropped afterwards."""
    name = f"billing_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite")
        return
    server_url = os.environ.get("BILLING_TEST_POSTGRES_URL", "")
    if not server_url:
        reason = "BILLING_TEST_POSTGRES_URL is not set (e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/postgres)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL billing tests are required under CI=true: {reason}")
        pytest.skip(reason)
    with _postgres_database(server_url) as url:
        engine = sa.create_engine(url)
        try:
            yield Backend("postgresql", url, engine)
        finally:
            engine.dispose()


@pytest.fixture
def database_url(backend: Backend, tmp_path: Path) -> str:
    if backend.kind == "sqlite":
        return f"sqlite:///{tmp_path / 'lab' / 'billing.db'}"
    backend.reset()
    return backend.url


@pytest.fixture
def app(database_url: str) -> Iterator[FastAPI]:
    application = create_app(database_url, TOKEN, fault_injection=True)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def db(database_url: str, app: FastAPI) -> Iterator[sa.Engine]:
    """An engine of its own for checking rows with plain SQL (tables exist: ``app`` created them)."""
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, headers=AUTH) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient, db: sa.Engine) -> Api:
    return Api(client, db)


# --- helpers --------------------------------------------------------------------------------------------


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every billing table, in id order: equal snapshots mean nothing was written."""
    with engine.connect() as connection:
        return {
            table: [tuple(row) for row in connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1")]
            for table in TABLES
        }


def scalar(engine: sa.Engine, query: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(sa.text(query), params).scalar()


def execute(engine: sa.Engine, query: str, **params: Any) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(query), params)


def cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


@dataclass
class Api:
    """Thin helpers over the HTTP API that assert the expected status."""

    client: TestClient
    db: sa.Engine
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def call(self, method: str, path: str, expected: int, body: Any = None, **kwargs: Any) -> Any:
        response = self.client.request(method, f"/api/v1{path}", json=body, **kwargs)
        assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def post(self, path: str, body: Any = None, expected: int = 201, **kwargs: Any) -> Any:
        return self.call("POST", path, expected, body, **kwargs)

    def get(self, path: str, expected: int = 200, **params: Any) -> Any:
        return self.call("GET", path, expected, params=params)

    def patch(self, path: str, body: Any, expected: int = 200) -> Any:
        return self.call("PATCH", path, expected, body)

    def customer(self, site: str | None = "north", **fields: Any) -> dict[str, Any]:
        number = next(self.numbers)
        body = {"name": f"Customer {number}", "email": f"c{number}@example.com", "phone": f"+2547{number:08d}"}
        return self.post("/customers", {**body, "site": site, **fields})

    def package(self, price: str = "5.00", site: str | None = "north", **fields: Any) -> dict[str, Any]:
        body = {"name": f"Package {next(self.numbers)}", "price": price, "validity_hours": 24, "site": site}
        return self.post("/packages", {**body, **fields})

    def voucher(self, package_id: int, **fields: Any) -> dict[str, Any]:
        return self.post("/vouchers", {"package_id": package_id, **fields})

    def router(self, site: str = "north", status: str = "online") -> dict[str, Any]:
        number = next(self.numbers)
        return self.post(
            "/routers",
            {
                "name": f"router {number}",
                "ip": f"10.0.{number // 250}.{number % 250 + 1}",
                "site": site,
                "status": status,
            },
        )

    def pay(
        self, customer_id: int, amount: str, method: str = "mpesa", expected: int = 201, **fields: Any
    ) -> dict[str, Any]:
        body = {"customer_id": customer_id, "amount": amount, "method": method, **fields}
        return self.post("/payments", body, expected=expected)

    def complete(self, payment_id: int, expected: int = 200, **kwargs: Any) -> Any:
        return self.post(f"/payments/{payment_id}/complete", expected=expected, **kwargs)

    def topup(self, customer_id: int, amount: str, method: str = "mpesa") -> dict[str, Any]:
        return self.complete(self.pay(customer_id, amount, method)["id"])

    def sold_voucher(self, customer_id: int, price: str = "5.00", **package: Any) -> dict[str, Any]:
        voucher = self.voucher(self.package(price, **package)["id"])
        self.complete(self.pay(customer_id, price, "cash", voucher_id=voucher["id"])["id"])
        return self.get(f"/vouchers/{voucher['id']}")

    def rejected(self, method: str, path: str, status: int, field: str | None, body: Any = None, **kwargs: Any) -> str:
        """The request is refused with the contract's error body and leaves every table as it was."""
        before = snapshot(self.db)
        error = self.call(method, path, status, body, **kwargs)["error"]
        codes = {401: "unauthorized", 404: "not_found", 409: "conflict", 422: "validation_error", 500: "internal_error"}
        assert error == {"status": status, "code": codes[status], "field": field, "message": error["message"]}
        assert error["message"]
        assert snapshot(self.db) == before, f"{method} {path} was refused but wrote to the database"
        return str(error["message"])


def assert_ledger_consistent(engine: sa.Engine, customer_id: int) -> None:
    """Balance = sum of transactions = last balance_after, and each balance_after follows from the one before."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT amount_cents, balance_after_cents FROM transactions WHERE customer_id = :c ORDER BY id"),
            {"c": customer_id},
        ).all()
        balance = connection.execute(
            sa.text("SELECT balance_cents FROM balances WHERE customer_id = :c"), {"c": customer_id}
        ).scalar_one()
    running = 0
    for amount, balance_after in rows:
        running += amount
        assert balance_after == running
        assert balance_after >= 0
    assert balance == running == sum(amount for amount, _ in rows)


# --- auth, errors, health ---------------------------------------------------------------------------------


def test_health_and_openapi_need_no_token(app: FastAPI, backend: Backend) -> None:
    with TestClient(app) as anonymous:
        assert anonymous.get("/health").json() == {"status": "ok", "database": backend.kind}
        spec = anonymous.get("/openapi.json").json()
    assert spec["info"]["title"] and spec["info"]["version"]
    expected = {
        "/api/v1/customers": {"get", "post"},
        "/api/v1/customers/{customer_id}": {"get", "patch"},
        "/api/v1/customers/{customer_id}/balance": {"get"},
        "/api/v1/customers/{customer_id}/transactions": {"get"},
        "/api/v1/customers/{customer_id}/payments": {"get"},
        "/api/v1/customers/{customer_id}/invoices": {"get"},
        "/api/v1/packages": {"get", "post"},
        "/api/v1/packages/{package_id}": {"get", "patch"},
        "/api/v1/vouchers": {"get", "post"},
        "/api/v1/vouchers/{voucher_id}": {"get"},
        "/api/v1/vouchers/{voucher_id}/expire": {"post"},
        "/api/v1/payments": {"get", "post"},
        "/api/v1/payments/{payment_id}": {"get"},
        "/api/v1/payments/{payment_id}/complete": {"post"},
        "/api/v1/payments/{payment_id}/fail": {"post"},
        "/api/v1/invoices": {"get"},
        "/api/v1/invoices/{invoice_id}": {"get"},
        "/api/v1/transactions": {"get"},
        "/api/v1/transactions/{transaction_id}": {"get"},
        "/api/v1/routers": {"get", "post"},
        "/api/v1/routers/{router_id}": {"get", "patch"},
        "/api/v1/sessions": {"get", "post"},
        "/api/v1/sessions/{session_id}": {"get"},
        "/api/v1/sessions/{session_id}/terminate": {"post"},
        "/api/v1/sessions/{session_id}/usage": {"post"},
        "/api/v1/dashboard": {"get"},
        "/health": {"get"},
    }
    assert {path: set(operations) for path, operations in spec["paths"].items()} == expected
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            assert operation["tags"], path
            if path.startswith("/api/v1"):
                assert operation["security"] == [{"HTTPBearer": []}], path


def test_api_refuses_a_missing_or_wrong_token(app: FastAPI, db: sa.Engine) -> None:
    for authorization in (None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", TOKEN, f"Bearer {TOKEN}x"):
        headers = {"Authorization": authorization} if authorization is not None else {}
        with TestClient(app, headers=headers) as anonymous:
            api = Api(anonymous, db)
            body = {"name": "A", "email": "a@example.com", "phone": "+254700000001"}
            api.rejected("POST", "/customers", 401, "authorization", body)
            response = anonymous.get("/api/v1/customers/1")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert TOKEN not in response.text


def test_malformed_json_and_wrong_body_shapes_are_422_on_body(api: Api) -> None:
    api.rejected("POST", "/customers", 422, "body", content=b'{"name": ', headers={"Content-Type": "application/json"})
    api.rejected("POST", "/customers", 422, "body", [1, 2])
    api.rejected("POST", "/customers", 422, "body")


def test_a_validation_error_names_the_field_the_value_and_the_rule(api: Api) -> None:
    customer = api.customer()
    message = api.rejected(
        "POST", "/payments", 422, "amount", {"customer_id": customer["id"], "amount": "-5.00", "method": "mpesa"}
    )
    assert message == "amount must be greater than 0, got '-5.00'"
    message = api.rejected(
        "POST", "/payments", 422, "method", {"customer_id": customer["id"], "amount": "5.00", "method": "bitcoin"}
    )
    assert "'bitcoin'" in message and "'mpesa'" in message
    assert api.rejected("GET", "/customers/abc", 422, "customer_id").startswith("customer_id must be")
    assert api.rejected("GET", "/payments", 422, "status", params={"status": "done"}).startswith("status must be")
    assert api.rejected("GET", "/nowhere", 404, "path")


def test_blank_query_parameters_mean_no_filter(api: Api) -> None:
    customer = api.customer()
    assert [c["id"] for c in api.get("/customers", site="", email="", phone="")["data"]] == [customer["id"]]
    assert api.get("/payments", customer_id="", status="")["data"] == []


# --- customers ------------------------------------------------------------------------------------------


def test_create_get_list_and_patch_a_customer(api: Api, db: sa.Engine) -> None:
    created = api.post(
        "/customers", {"name": "Ann", "email": "Ann@Example.COM", "phone": "+254711000001", "site": "north"}
    )
    assert created["email"] == "ann@example.com"
    assert created["status"] == "active"
    assert TIMESTAMP.match(created["created_at"])
    assert scalar(db, "SELECT email FROM customers WHERE id = :i", i=created["id"]) == "ann@example.com"
    assert api.get(f"/customers/{created['id']}") == created
    other = api.customer(site="south")
    assert [c["id"] for c in api.get("/customers", site="north")["data"]] == [created["id"]]
    assert [c["id"] for c in api.get("/customers", email="ANN@example.com")["data"]] == [created["id"]]
    assert [c["id"] for c in api.get("/customers", phone=other["phone"])["data"]] == [other["id"]]
    assert [c["id"] for c in api.get("/customers")["data"]] == [created["id"], other["id"]]

    balance = api.get(f"/customers/{created['id']}/balance")
    assert balance["customer_id"] == created["id"]
    assert (balance["balance"], balance["currency"]) == ("0.00", "USD")
    assert scalar(db, "SELECT balance_cents FROM balances WHERE customer_id = :i", i=created["id"]) == 0

    patched = api.patch(f"/customers/{created['id']}", {"status": "suspended", "name": "Ann B", "site": None})
    assert (patched["status"], patched["name"], patched["site"], patched["email"]) == (
        "suspended",
        "Ann B",
        None,
        "ann@example.com",
    )
    for sub in ("transactions", "payments", "invoices"):
        assert api.get(f"/customers/{created['id']}/{sub}") == {"data": []}


def test_customer_with_a_bad_field_is_refused(api: Api) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"email": "not-an-email"}, "email"),
        ({"email": "two@@example.com"}, "email"),
        ({"phone": "254700000009"}, "phone"),
        ({"phone": "+1234567"}, "phone"),
        ({"phone": "+1234567890123456"}, "phone"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"site": 7}, "site"),
        ({"nickname": "x"}, "nickname"),
    ]
    for change, field_name in cases:
        body = {"name": "Bad", "email": "bad@example.com", "phone": "+254700000009", **change}
        api.rejected("POST", "/customers", 422, field_name, body)


def test_duplicate_email_or_phone_is_a_conflict(api: Api) -> None:
    first = api.customer()
    api.rejected(
        "POST", "/customers", 409, "email", {"name": "X", "email": first["email"].upper(), "phone": "+254799999999"}
    )
    api.rejected("POST", "/customers", 409, "phone", {"name": "X", "email": "new@example.com", "phone": first["phone"]})


def test_customer_updates_and_lookups_are_checked(api: Api) -> None:
    customer = api.customer()
    api.rejected("PATCH", f"/customers/{customer['id']}", 422, "status", {"status": "gone"})
    api.rejected("PATCH", f"/customers/{customer['id']}", 422, "name", {"name": None})
    api.rejected("PATCH", f"/customers/{customer['id']}", 422, "email", {"email": "x@example.com"})
    api.rejected("PATCH", "/customers/999", 404, "customer_id", {"name": "Nobody"})
    for path in ("", "/balance", "/transactions", "/payments", "/invoices"):
        api.rejected("GET", f"/customers/999{path}", 404, "customer_id")


# --- packages -------------------------------------------------------------------------------------------


def test_create_get_list_and_patch_a_package(api: Api, db: sa.Engine) -> None:
    package = api.post(
        "/packages", {"name": "Day", "price": "5", "validity_hours": 24, "data_quota_mb": 1024, "site": "north"}
    )
    assert package["price"] == "5.00"
    assert (package["currency"], package["active"], package["time_quota_minutes"]) == ("USD", True, None)
    assert scalar(db, "SELECT price_cents FROM packages WHERE id = :i", i=package["id"]) == 500
    assert api.get(f"/packages/{package['id']}") == package
    other = api.package("1.50", site="south", active=False, time_quota_minutes=60)
    assert [p["id"] for p in api.get("/packages", active="true")["data"]] == [package["id"]]
    assert [p["id"] for p in api.get("/packages", active="false")["data"]] == [other["id"]]
    assert [p["id"] for p in api.get("/packages", site="south")["data"]] == [other["id"]]
    patched = api.patch(f"/packages/{package['id']}", {"price": "7.25", "active": False, "name": "Day+"})
    assert (patched["price"], patched["active"], patched["name"]) == ("7.25", False, "Day+")
    assert scalar(db, "SELECT price_cents FROM packages WHERE id = :i", i=package["id"]) == 725
    api.rejected("GET", "/packages/999", 404, "package_id")
    api.rejected("PATCH", f"/packages/{package['id']}", 422, "price", {"price": "0.00"})


def test_package_with_a_bad_field_is_refused(api: Api) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"price": "0"}, "price"),
        ({"price": "-1.00"}, "price"),
        ({"price": "1.234"}, "price"),
        ({"price": "ten"}, "price"),
        ({"price": None}, "price"),
        ({"validity_hours": 0}, "validity_hours"),
        ({"data_quota_mb": -1}, "data_quota_mb"),
        ({"time_quota_minutes": "lots"}, "time_quota_minutes"),
        ({"currency": "EUR"}, "currency"),
    ]
    for change, field_name in cases:
        api.rejected(
            "POST", "/packages", 422, field_name, {"name": "P", "price": "1.00", "validity_hours": 1, **change}
        )


# --- vouchers -------------------------------------------------------------------------------------------


def test_create_get_and_list_vouchers(api: Api) -> None:
    package = api.package()
    customer = api.customer()
    generated = api.voucher(package["id"])
    assert re.fullmatch(r"[A-Z0-9]{12}", generated["code"])
    assert (generated["status"], generated["customer_id"], generated["sold_at"], generated["redeemed_at"]) == (
        "unused",
        None,
        None,
        None,
    )
    created_at = datetime.fromisoformat(generated["created_at"])
    expires_at = datetime.fromisoformat(generated["expires_at"])
    assert abs(expires_at - created_at - timedelta(days=30)) < timedelta(seconds=1)
    chosen = api.voucher(package["id"], code="LAB-0001", customer_id=customer["id"], expires_at="2099-01-01T00:00:00Z")
    assert (chosen["code"], chosen["customer_id"]) == ("LAB-0001", customer["id"])
    assert chosen["expires_at"].startswith("2099-01-01T00:00:00")
    assert api.get(f"/vouchers/{chosen['id']}") == chosen
    assert [v["id"] for v in api.get("/vouchers", code="LAB-0001")["data"]] == [chosen["id"]]
    assert [v["id"] for v in api.get("/vouchers", customer_id=customer["id"])["data"]] == [chosen["id"]]
    assert [v["id"] for v in api.get("/vouchers", status="unused")["data"]] == [generated["id"], chosen["id"]]


def test_voucher_creation_rules(api: Api) -> None:
    package = api.package()
    inactive = api.package(active=False)
    api.voucher(package["id"], code="TAKEN")
    api.rejected("POST", "/vouchers", 404, "package_id", {"package_id": 999})
    api.rejected("POST", "/vouchers", 404, "customer_id", {"package_id": package["id"], "customer_id": 999})
    api.rejected("POST", "/vouchers", 409, "package_id", {"package_id": inactive["id"]})
    api.rejected("POST", "/vouchers", 409, "code", {"package_id": package["id"], "code": "TAKEN"})
    api.rejected("POST", "/vouchers", 422, "code", {"package_id": package["id"], "code": "no spaces"})
    api.rejected("POST", "/vouchers", 422, "expires_at", {"package_id": package["id"], "expires_at": "soon"})
    api.rejected("GET", "/vouchers/999", 404, "voucher_id")


def test_expire_a_voucher_only_from_unused_or_sold(api: Api) -> None:
    package = api.package()
    unused = api.voucher(package["id"])
    assert api.post(f"/vouchers/{unused['id']}/expire", expected=200)["status"] == "expired"
    api.rejected("POST", f"/vouchers/{unused['id']}/expire", 409, "status")
    sold = api.sold_voucher(api.customer()["id"])
    assert api.post(f"/vouchers/{sold['id']}/expire", expected=200)["status"] == "expired"
    api.rejected("POST", "/vouchers/999/expire", 404, "voucher_id")


def test_a_voucher_past_its_expiry_is_reported_and_stored_as_expired(api: Api, db: sa.Engine) -> None:
    package = api.package()
    born_expired = api.voucher(package["id"], expires_at="2000-01-01T00:00:00Z")
    assert born_expired["status"] == "expired"
    voucher = api.voucher(package["id"])
    execute(db, "UPDATE vouchers SET expires_at = :t WHERE id = :i", t=datetime(2001, 1, 1), i=voucher["id"])
    assert scalar(db, "SELECT status FROM vouchers WHERE id = :i", i=voucher["id"]) == "unused"
    assert api.get(f"/vouchers/{voucher['id']}")["status"] == "expired"
    assert scalar(db, "SELECT status FROM vouchers WHERE id = :i", i=voucher["id"]) == "expired"


# --- payments -------------------------------------------------------------------------------------------


def test_a_top_up_completes_with_ledger_invoice_and_balance(api: Api, db: sa.Engine) -> None:
    customer = api.customer()
    pending = api.pay(customer["id"], "12.50", "card")
    assert (pending["status"], pending["purpose"], pending["amount"], pending["invoice_id"]) == (
        "pending",
        "topup",
        "12.50",
        None,
    )
    assert api.get(f"/payments/{pending['id']}") == pending
    done = api.complete(pending["id"], body={"reference": "CARD-42"})
    assert (done["status"], done["reference"]) == ("completed", "CARD-42")
    assert TIMESTAMP.match(done["completed_at"])

    invoice = api.get(f"/invoices/{done['invoice_id']}")
    assert (invoice["number"], invoice["payment_id"], invoice["amount"], invoice["status"]) == (
        "INV-000001",
        pending["id"],
        "12.50",
        "paid",
    )
    assert api.get("/invoices", payment_id=pending["id"])["data"] == [invoice]
    assert api.get(f"/customers/{customer['id']}/invoices")["data"] == [invoice]
    (transaction,) = api.get(f"/customers/{customer['id']}/transactions")["data"]
    assert (transaction["kind"], transaction["amount"], transaction["balance_after"]) == ("credit", "12.50", "12.50")
    assert api.get(f"/transactions/{transaction['id']}") == transaction
    assert api.get("/transactions", payment_id=pending["id"])["data"] == [transaction]
    assert api.get(f"/customers/{customer['id']}/balance")["balance"] == "12.50"
    assert api.get("/payments", customer_id=customer["id"], status="completed")["data"] == [done]
    assert api.get(f"/customers/{customer['id']}/payments")["data"] == [done]
    assert scalar(db, "SELECT amount_cents FROM payments WHERE id = :i", i=pending["id"]) == 1250
    assert api.complete(api.pay(customer["id"], "1.00")["id"])["invoice_id"] != done["invoice_id"]
    assert api.get("/invoices/2")["number"] == "INV-000002"
    api.rejected("GET", "/invoices/999", 404, "invoice_id")
    api.rejected("GET", "/transactions/999", 404, "transaction_id")
    api.rejected("GET", "/payments/999", 404, "payment_id")


@dataclass
class PaymentWorld:
    customer: dict[str, Any]
    other: dict[str, Any]
    unused: dict[str, Any]
    sold: dict[str, Any]
    owned_by_other: dict[str, Any]


@pytest.fixture
def world(api: Api) -> PaymentWorld:
    customer, other = api.customer(), api.customer()
    package = api.package("5.00")
    api.topup(customer["id"], "3.00")
    return PaymentWorld(
        customer=customer,
        other=other,
        unused=api.voucher(package["id"]),
        sold=api.sold_voucher(other["id"]),
        owned_by_other=api.voucher(package["id"], customer_id=other["id"]),
    )


def test_payment_rules(api: Api, world: PaymentWorld) -> None:
    me = world.customer["id"]
    cases: list[tuple[int, str, dict[str, Any]]] = [  # status, field, body
        (422, "amount", {"customer_id": me, "amount": "0.00", "method": "mpesa"}),
        (422, "amount", {"customer_id": me, "amount": "-5", "method": "mpesa"}),
        (422, "amount", {"customer_id": me, "method": "mpesa"}),
        (404, "customer_id", {"customer_id": 999, "amount": "5.00", "method": "mpesa"}),
        (404, "voucher_id", {"customer_id": me, "amount": "5.00", "method": "mpesa", "voucher_id": 999}),
        (422, "method", {"customer_id": me, "amount": "1.00", "method": "wallet"}),  # wallet top-up
        (422, "method", {"customer_id": me, "amount": "1.00", "method": "iou"}),
        # a voucher payment's amount must be the package price
        (422, "amount", {"customer_id": me, "amount": "4.99", "method": "mpesa", "voucher_id": world.unused["id"]}),
        (409, "voucher_id", {"customer_id": me, "amount": "5.00", "method": "mpesa", "voucher_id": world.sold["id"]}),
        # another customer's voucher
        (
            409,
            "voucher_id",
            {"customer_id": me, "amount": "5.00", "method": "mpesa", "voucher_id": world.owned_by_other["id"]},
        ),
        # wallet balance 3.00 < 5.00
        (422, "amount", {"customer_id": me, "amount": "5.00", "method": "wallet", "voucher_id": world.unused["id"]}),
        (422, "purpose", {"customer_id": me, "amount": "5.00", "method": "mpesa", "purpose": "voucher"}),
    ]
    for status, field_name, body in cases:
        api.rejected("POST", "/payments", status, field_name, body)


def test_the_same_idempotency_key_answers_the_first_payment_and_writes_nothing(api: Api, db: sa.Engine) -> None:
    customer = api.customer()
    first = api.pay(customer["id"], "10.00", idempotency_key="key-1")
    before = snapshot(db)
    again = api.pay(customer["id"], "99.00", "card", idempotency_key="key-1", expected=200)
    assert again == first
    assert snapshot(db) == before

    by_header = api.post(
        "/payments",
        {"customer_id": customer["id"], "amount": "2.00", "method": "cash"},
        headers={"Idempotency-Key": "key-2"},
    )
    assert by_header["idempotency_key"] == "key-2"
    completed = api.complete(by_header["id"])
    before = snapshot(db)
    replay = api.post(
        "/payments",
        {"customer_id": customer["id"], "amount": "2.00", "method": "cash"},
        headers={"Idempotency-Key": "key-2"},
        expected=200,
    )
    assert replay == completed
    assert snapshot(db) == before
    api.rejected(
        "POST",
        "/payments",
        422,
        "idempotency_key",
        {"customer_id": customer["id"], "amount": "2.00", "method": "cash", "idempotency_key": "key-3"},
        headers={"Idempotency-Key": "key-4"},
    )


def test_only_a_pending_payment_completes_or_fails(api: Api) -> None:
    customer = api.customer()
    done = api.topup(customer["id"], "4.00")
    api.rejected("POST", f"/payments/{done['id']}/complete", 409, "status")
    api.rejected("POST", f"/payments/{done['id']}/fail", 409, "status", {"reason": "late"})
    pending = api.pay(customer["id"], "6.00")
    api.rejected("POST", f"/payments/{pending['id']}/fail", 422, "reason", {})
    failed = api.post(f"/payments/{pending['id']}/fail", {"reason": "card declined"}, expected=200)
    assert (failed["status"], failed["failure_reason"], failed["invoice_id"]) == ("failed", "card declined", None)
    api.rejected("POST", f"/payments/{pending['id']}/complete", 409, "status")
    api.rejected("POST", f"/payments/{pending['id']}/fail", 409, "status", {"reason": "again"})
    api.rejected("POST", "/payments/999/complete", 404, "payment_id")
    assert api.get(f"/customers/{customer['id']}/balance")["balance"] == "4.00"
    assert [p["id"] for p in api.get("/payments", status="failed")["data"]] == [pending["id"]]


def test_a_voucher_bought_by_mpesa_credits_then_debits(api: Api) -> None:
    customer = api.customer()
    voucher = api.voucher(api.package("5.00")["id"])
    payment = api.pay(customer["id"], "5.00", voucher_id=voucher["id"])
    assert payment["purpose"] == "voucher"
    api.complete(payment["id"])
    entries = api.get(f"/customers/{customer['id']}/transactions")["data"]
    assert [(t["kind"], t["amount"], t["balance_after"]) for t in entries] == [
        ("credit", "5.00", "5.00"),
        ("debit", "-5.00", "0.00"),
    ]
    sold = api.get(f"/vouchers/{voucher['id']}")
    assert (sold["status"], sold["customer_id"]) == ("sold", customer["id"])
    assert TIMESTAMP.match(sold["sold_at"])
    assert api.get(f"/customers/{customer['id']}/balance")["balance"] == "0.00"


def test_a_voucher_bought_from_the_wallet_is_one_debit_rechecked_at_completion(api: Api, db: sa.Engine) -> None:
    customer = api.customer()
    api.topup(customer["id"], "8.00")
    package = api.package("5.00")
    first, second = api.voucher(package["id"]), api.voucher(package["id"])
    pay_first = api.pay(customer["id"], "5.00", "wallet", voucher_id=first["id"])
    pay_second = api.pay(customer["id"], "5.00", "wallet", voucher_id=second["id"])  # 8.00 >= 5.00 for now
    api.complete(pay_first["id"])
    message = api.rejected("POST", f"/payments/{pay_second['id']}/complete", 422, "amount")
    assert "3.00" in message
    entries = api.get(f"/customers/{customer['id']}/transactions")["data"]
    assert [(t["kind"], t["amount"], t["balance_after"]) for t in entries] == [
        ("credit", "8.00", "8.00"),
        ("debit", "-5.00", "3.00"),
    ]
    assert api.get(f"/vouchers/{second['id']}")["status"] == "unused"
    assert_ledger_consistent(db, customer["id"])


def test_a_fault_part_way_through_completion_rolls_everything_back(
    api: Api, db: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    customer = api.customer()
    api.topup(customer["id"], "9.00")
    voucher = api.voucher(api.package("5.00")["id"])
    payment = api.pay(customer["id"], "5.00", "wallet", voucher_id=voucher["id"])
    with caplog.at_level(logging.ERROR, logger="lab.billing"):
        message = api.rejected(
            "POST", f"/payments/{payment['id']}/complete", 500, None, headers={"X-Billing-Fault": "after-invoice"}
        )
    assert "Traceback" not in message and "after-invoice" not in message
    assert "InjectedFaultError" in caplog.text
    assert api.get(f"/payments/{payment['id']}")["status"] == "pending"
    assert api.get(f"/vouchers/{voucher['id']}")["status"] == "unused"
    assert api.get(f"/customers/{customer['id']}/balance")["balance"] == "9.00"
    assert scalar(db, "SELECT COUNT(*) FROM invoices WHERE payment_id = :p", p=payment["id"]) == 0
    assert scalar(db, "SELECT COUNT(*) FROM transactions WHERE payment_id = :p", p=payment["id"]) == 0
    assert api.complete(payment["id"])["status"] == "completed"
    assert api.get(f"/customers/{customer['id']}/balance")["balance"] == "4.00"
    assert_ledger_consistent(db, customer["id"])


def test_the_fault_header_is_ignored_without_fault_injection(database_url: str) -> None:
    app = create_app(database_url, TOKEN)
    try:
        with TestClient(app, headers=AUTH) as client:
            customer = client.post(
                "/api/v1/customers", json={"name": "F", "email": "f@example.com", "phone": "+254700000077"}
            ).json()
            payment = client.post(
                "/api/v1/payments", json={"customer_id": customer["id"], "amount": "1.00", "method": "cash"}
            ).json()
            response = client.post(
                f"/api/v1/payments/{payment['id']}/complete", headers={"X-Billing-Fault": "after-invoice"}
            )
        assert response.status_code == 200
        assert response.json()["status"] == "completed"
    finally:
        app.state.engine.dispose()


def test_the_ledger_invariant_holds_after_top_ups_and_purchases(api: Api, db: sa.Engine) -> None:
    customer = api.customer()
    api.topup(customer["id"], "10.00", "mpesa")
    api.sold_voucher(customer["id"], "3.00")  # cash: credit + debit
    api.topup(customer["id"], "0.35", "bank")
    wallet_voucher = api.voucher(api.package("7.50")["id"])
    api.complete(api.pay(customer["id"], "7.50", "wallet", voucher_id=wallet_voucher["id"])["id"])
    api.topup(customer["id"], "1.15", "card")
    failed = api.pay(customer["id"], "50.00")
    api.post(f"/payments/{failed['id']}/fail", {"reason": "timeout"}, expected=200)
    api.pay(customer["id"], "20.00")  # stays pending: no ledger effect

    assert_ledger_consistent(db, customer["id"])
    entries = api.get(f"/customers/{customer['id']}/transactions")["data"]
    assert [t["kind"] for t in entries] == ["credit", "credit", "debit", "credit", "debit", "credit"]
    balance = api.get(f"/customers/{customer['id']}/balance")["balance"]
    assert balance == entries[-1]["balance_after"] == "4.00"
    assert sum(cents(t["amount"]) for t in entries) == cents(balance)
    invoices = api.get(f"/customers/{customer['id']}/invoices")["data"]
    assert len(invoices) == 5
    assert len({i["number"] for i in invoices}) == 5


# --- routers and sessions -------------------------------------------------------------------------------


def test_create_get_list_and_patch_routers(api: Api) -> None:
    router = api.post("/routers", {"name": "edge-1", "ip": "2001:DB8:0:0::1", "site": "north"})
    assert (router["ip"], router["status"], router["active_sessions"]) == ("2001:db8::1", "online", 0)
    assert api.get(f"/routers/{router['id']}") == router
    offline = api.router(site="south", status="offline")
    assert [r["id"] for r in api.get("/routers", status="offline")["data"]] == [offline["id"]]
    assert [r["id"] for r in api.get("/routers", site="north")["data"]] == [router["id"]]
    patched = api.patch(f"/routers/{offline['id']}", {"status": "online", "name": "edge-2"})
    assert (patched["status"], patched["name"]) == ("online", "edge-2")
    api.rejected("POST", "/routers", 422, "ip", {"name": "r", "ip": "10.0.0.300", "site": "north"})
    api.rejected("POST", "/routers", 409, "ip", {"name": "r", "ip": "2001:db8::1", "site": "north"})
    api.rejected("POST", "/routers", 422, "site", {"name": "r", "ip": "10.9.9.9"})
    api.rejected("PATCH", f"/routers/{router['id']}", 422, "status", {"status": "down"})
    api.rejected("GET", "/routers/999", 404, "router_id")


def test_a_session_redeems_a_sold_voucher(api: Api) -> None:
    customer = api.customer()
    voucher = api.sold_voucher(customer["id"], data_quota_mb=100, time_quota_minutes=90, validity_hours=3)
    router = api.router()
    started = api.post("/sessions", {"voucher_id": voucher["id"], "router_id": router["id"]})
    assert (started["status"], started["customer_id"], started["data_used_mb"]) == ("active", customer["id"], 0)
    assert (started["data_quota_mb"], started["time_quota_minutes"], started["ended_at"]) == (100, 90, None)
    duration = datetime.fromisoformat(started["expires_at"]) - datetime.fromisoformat(started["started_at"])
    assert abs(duration - timedelta(hours=3)) < timedelta(seconds=1)
    redeemed = api.get(f"/vouchers/{voucher['id']}")
    assert redeemed["status"] == "redeemed" and TIMESTAMP.match(redeemed["redeemed_at"])
    assert api.get(f"/routers/{router['id']}")["active_sessions"] == 1
    assert api.get(f"/sessions/{started['id']}") == started
    assert [s["id"] for s in api.get("/sessions", router_id=router["id"], status="active")["data"]] == [started["id"]]

    used = api.post(f"/sessions/{started['id']}/usage", {"data_mb": 60}, expected=200)
    assert (used["data_used_mb"], used["status"]) == (60, "active")
    api.rejected("POST", f"/sessions/{started['id']}/usage", 422, "data_mb", {"data_mb": -1})
    used = api.post(f"/sessions/{started['id']}/usage", {"data_mb": 40}, expected=200)
    assert (used["data_used_mb"], used["status"]) == (100, "expired")
    assert used["ended_at"] is not None
    api.rejected("POST", f"/sessions/{started['id']}/terminate", 409, "status")
    assert api.get(f"/routers/{router['id']}")["active_sessions"] == 0

    second = api.post("/sessions", {"voucher_id": api.sold_voucher(customer["id"])["id"], "router_id": router["id"]})
    ended = api.post(f"/sessions/{second['id']}/terminate", expected=200)
    assert ended["status"] == "terminated" and ended["ended_at"]
    api.rejected("POST", f"/sessions/{second['id']}/terminate", 409, "status")
    api.rejected("GET", "/sessions/999", 404, "session_id")


def test_session_rules(api: Api) -> None:
    customer = api.customer()
    package = api.package()
    online, offline = api.router(), api.router(status="offline")
    unpaid = api.voucher(package["id"])
    sold = api.sold_voucher(customer["id"])
    expired = api.sold_voucher(customer["id"])
    api.post(f"/vouchers/{expired['id']}/expire", expected=200)
    redeemed = api.sold_voucher(customer["id"])
    api.post("/sessions", {"voucher_id": redeemed["id"], "router_id": online["id"]})

    def refused(voucher_id: int, router_id: int, status: int, field: str) -> None:
        api.rejected("POST", "/sessions", status, field, {"voucher_id": voucher_id, "router_id": router_id})

    refused(999, online["id"], 404, "voucher_id")
    refused(sold["id"], 999, 404, "router_id")
    refused(unpaid["id"], online["id"], 409, "voucher_id")
    refused(redeemed["id"], online["id"], 409, "voucher_id")
    refused(expired["id"], online["id"], 409, "voucher_id")
    refused(sold["id"], offline["id"], 409, "router_id")
    api.rejected("POST", "/sessions", 422, "router_id", {"voucher_id": sold["id"]})


def test_a_session_past_its_expiry_is_reported_and_stored_as_expired(api: Api, db: sa.Engine) -> None:
    customer = api.customer()
    router = api.router()
    started = api.post("/sessions", {"voucher_id": api.sold_voucher(customer["id"])["id"], "router_id": router["id"]})
    execute(db, "UPDATE sessions SET expires_at = :t WHERE id = :i", t=datetime(2001, 1, 1), i=started["id"])
    assert api.get(f"/routers/{router['id']}")["active_sessions"] == 0
    assert scalar(db, "SELECT status FROM sessions WHERE id = :i", i=started["id"]) == "expired"
    assert api.get(f"/sessions/{started['id']}")["status"] == "expired"
    api.rejected("POST", f"/sessions/{started['id']}/usage", 409, "status", {"data_mb": 1})


# --- dashboard ------------------------------------------------------------------------------------------


def _dashboard_by_sql(engine: sa.Engine, site: str | None) -> dict[str, Any]:
    def where(column: str) -> str:
        return f" AND {column} = :site" if site else ""

    def count(query: str) -> int:
        return int(scalar(engine, query, site=site))

    def by_status(table: str, join: str, site_column: str, statuses: tuple[str, ...]) -> dict[str, int]:
        base = f"SELECT COUNT(*) FROM {table} t {join} WHERE 1 = 1{where(site_column)}"
        figures = {"total": count(base)}
        figures.update({status: count(f"{base} AND t.status = '{status}'") for status in statuses})
        return figures

    revenue = count(
        "SELECT COALESCE(SUM(p.amount_cents), 0) FROM payments p JOIN customers c ON c.id = p.customer_id "
        f"WHERE p.status = 'completed'{where('c.site')}"
    )
    balances = count(
        "SELECT COALESCE(SUM(b.balance_cents), 0) FROM balances b JOIN customers c ON c.id = b.customer_id "
        f"WHERE 1 = 1{where('c.site')}"
    )
    packages = f"SELECT COUNT(*) FROM packages WHERE 1 = 1{where('site')}"
    return {
        "customers": by_status("customers", "", "t.site", ("active",)),
        "packages": {"total": count(packages), "active": count(f"{packages} AND active")},
        "vouchers": by_status(
            "vouchers", "JOIN packages k ON k.id = t.package_id", "k.site", ("unused", "sold", "redeemed", "expired")
        ),
        "payments": by_status(
            "payments", "JOIN customers c ON c.id = t.customer_id", "c.site", ("pending", "completed", "failed")
        ),
        "sessions": by_status("sessions", "JOIN routers r ON r.id = t.router_id", "r.site", ("active",)),
        "routers": by_status("routers", "", "t.site", ("online",)),
        "revenue": f"{revenue // 100}.{revenue % 100:02d}",
        "balances": {"total": f"{balances // 100}.{balances % 100:02d}"},
    }


def test_the_dashboard_agrees_with_sql(api: Api, db: sa.Engine) -> None:
    north, south = api.customer("north"), api.customer("south")
    suspended = api.customer("north")
    api.customer(None)
    api.patch(f"/customers/{suspended['id']}", {"status": "suspended"})
    api.topup(north["id"], "20.00")
    api.topup(south["id"], "7.77")
    api.post(f"/payments/{api.pay(north['id'], '3.00')['id']}/fail", {"reason": "x"}, expected=200)
    api.pay(south["id"], "1.00")
    north_voucher = api.sold_voucher(north["id"], "2.50", site="north")
    api.sold_voucher(south["id"], "4.00", site="south")
    api.voucher(api.package(site="north", active=True)["id"])
    stale = api.voucher(api.package(site="south")["id"])
    api.package(site="north", active=False)
    north_router, south_router = api.router("north"), api.router("south")
    api.router("north", status="offline")
    api.post("/sessions", {"voucher_id": north_voucher["id"], "router_id": north_router["id"]})
    ended = api.post("/sessions", {"voucher_id": api.sold_voucher(south["id"])["id"], "router_id": south_router["id"]})
    api.post(f"/sessions/{ended['id']}/terminate", expected=200)
    execute(db, "UPDATE vouchers SET expires_at = :t WHERE id = :i", t=datetime(2001, 1, 1), i=stale["id"])

    for site in (None, "north", "nowhere"):
        params = {"site": site} if site else {}
        figures = api.get("/dashboard", **params)
        assert figures.pop("site") == site
        assert TIMESTAMP.match(figures.pop("generated_at"))
        assert figures == _dashboard_by_sql(db, site), site
        # and by hand: completed are the top-ups 20.00 (north) and 7.77 (south), vouchers 2.50 (north), 4.00, 5.00
        assert figures["revenue"] == {None: "39.27", "north": "22.50", "nowhere": "0.00"}[site]
        assert figures["vouchers"]["expired"] == {None: 1, "north": 0, "nowhere": 0}[site]
        assert (
            figures["customers"]
            == {
                None: {"total": 4, "active": 3},
                "north": {"total": 2, "active": 1},
                "nowhere": {"total": 0, "active": 0},
            }[site]
        )


# --- concurrency over a real server ---------------------------------------------------------------------


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn in a thread, on a free 127.0.0.1 port; stopped afterwards."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def run_parallel(base_url: str, workers: int, work: Callable[[httpx.Client, int], Any]) -> list[Any]:
    def one(index: int) -> Any:
        with httpx.Client(base_url=base_url, headers=AUTH, timeout=30) as http:
            return work(http, index)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(workers)))


def test_parallel_top_ups_keep_the_ledger_consistent(app: FastAPI, api: Api, db: sa.Engine) -> None:
    customer = api.customer()

    def top_up_ten_times(http: httpx.Client, worker: int) -> list[int]:
        amounts = []
        for round_ in range(10):
            amount = f"{worker + 1}.{round_:02d}"
            payment = http.post("/payments", json={"customer_id": customer["id"], "amount": amount, "method": "mpesa"})
            assert payment.status_code == 201, payment.text
            completed = http.post(f"/payments/{payment.json()['id']}/complete")
            assert completed.status_code == 200, completed.text
            amounts.append(cents(amount))
        return amounts

    with live_server(app) as base_url:
        amounts = [a for worker in run_parallel(base_url, 8, top_up_ten_times) for a in worker]
    assert len(amounts) == 80
    assert_ledger_consistent(db, customer["id"])
    with db.connect() as connection:
        after = [
            row[0] for row in connection.exec_driver_sql("SELECT balance_after_cents FROM transactions ORDER BY id")
        ]
    assert after == sorted(after) and len(set(after)) == 80  # credits only: strictly increasing
    assert after[-1] == sum(amounts)
    assert (
        api.get(f"/customers/{customer['id']}/balance")["balance"] == f"{sum(amounts) // 100}.{sum(amounts) % 100:02d}"
    )
    assert scalar(db, "SELECT COUNT(DISTINCT number) FROM invoices") == 80


def test_parallel_requests_with_one_idempotency_key_create_one_payment(app: FastAPI, api: Api, db: sa.Engine) -> None:
    customer = api.customer()
    body = {"customer_id": customer["id"], "amount": "5.00", "method": "card", "idempotency_key": "same-key"}

    def post(http: httpx.Client, _worker: int) -> tuple[int, int]:
        response = http.post("/payments", json=body)
        return response.status_code, response.json()["id"]

    with live_server(app) as base_url:
        answers = run_parallel(base_url, 8, post)
    assert sorted(status for status, _ in answers) == [200] * 7 + [201]
    assert len({payment_id for _, payment_id in answers}) == 1
    assert scalar(db, "SELECT COUNT(*) FROM payments") == 1


def test_parallel_wallet_purchases_never_overdraw(app: FastAPI, api: Api, db: sa.Engine) -> None:
    customer = api.customer()
    api.topup(customer["id"], "10.00")
    package = api.package("4.00")
    payments = [
        api.pay(customer["id"], "4.00", "wallet", voucher_id=api.voucher(package["id"])["id"]) for _ in range(6)
    ]

    def complete(http: httpx.Client, worker: int) -> int:
        return http.post(f"/payments/{payments[worker]['id']}/complete").status_code

    with live_server(app) as base_url:
        statuses = run_parallel(base_url, 6, complete)
    assert sorted(statuses) == [200, 200, 422, 422, 422, 422]
    assert api.get(f"/customers/{customer['id']}/balance")["balance"] == "2.00"
    assert_ledger_consistent(db, customer["id"])
    assert scalar(db, "SELECT COUNT(*) FROM vouchers WHERE status = 'sold'") == 2


# --- the process ----------------------------------------------------------------------------------------


def test_the_service_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if key != "BILLING_ADMIN_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "lab.billing", "--port", "1", "--database-url", f"sqlite:///{tmp_path / 'b.db'}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "BILLING_ADMIN_TOKEN" in result.stderr
    assert not (tmp_path / "b.db").exists()
