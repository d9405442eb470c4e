"""The FastAPI application: routes, bearer-token auth, and the contract's error bodies.

The routes only translate HTTP to ``service`` calls and rows to response models; the rules live in
``service.py``.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from lab.billing import service
from lab.billing.db import dialect_label, make_engine, make_sessionmaker
from lab.billing.errors import ApiError, UnavailableError
from lab.billing.models import Base
from lab.billing.schemas import (
    BalanceFigures,
    BalanceOut,
    CustomerCreate,
    CustomerOut,
    CustomerUpdate,
    DashboardOut,
    ErrorOut,
    HealthOut,
    InvoiceOut,
    PackageCreate,
    PackageOut,
    PackageUpdate,
    Page,
    PaymentComplete,
    PaymentCreate,
    PaymentFail,
    PaymentFigures,
    PaymentOut,
    PaymentStatus,
    RouterCreate,
    RouterFigures,
    RouterOut,
    RouterStatus,
    RouterUpdate,
    SessionCreate,
    SessionOut,
    SessionStatus,
    SessionUsage,
    TotalActive,
    TransactionOut,
    VoucherCreate,
    VoucherFigures,
    VoucherOut,
    VoucherStatus,
)
from lab.http_errors import BlankQueryMiddleware, InternalErrorMiddleware, error_response

logger = logging.getLogger("lab.billing")

API_PREFIX = "/api/v1"
FAULT_HEADER = "X-Billing-Fault"
DESCRIPTION = """
Lab stand-in for the platform's billing REST API (contract: `docs/billing-api.md`).

Every `/api/v1` path needs `Authorization: Bearer <admin token>`. Money is a decimal string with two places;
timestamps are ISO 8601 UTC with `Z`. Every 4xx/5xx answers `{"error": {"status", "code", "field", "message"}}`.
"""
TAGS = [
    {"name": "health", "description": "Liveness; no token needed."},
    {"name": "customers", "description": "Customers, their balance, ledger, payments and invoices."},
    {"name": "packages", "description": "Sellable hotspot packages."},
    {"name": "vouchers", "description": "Vouchers: unused → sold → redeemed, or expired."},
    {"name": "payments", "description": "Top-ups and voucher purchases: pending → completed | failed."},
    {"name": "invoices", "description": "One invoice per completed payment."},
    {"name": "transactions", "description": "The ledger: signed amounts with the running balance."},
    {"name": "routers", "description": "Hotspot routers."},
    {"name": "sessions", "description": "Hotspot sessions started by redeeming a sold voucher."},
    {"name": "dashboard", "description": "Figures over everything or one site."},
]
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token"},
    404: {"model": ErrorOut, "description": "An id in the path or body names nothing"},
    409: {"model": ErrorOut, "description": "State or uniqueness conflict"},
    422: {"model": ErrorOut, "description": "A field's value is invalid"},
    500: {"model": ErrorOut, "description": "Internal error"},
}
_STATUS_CODES = {401: "unauthorized", 404: "not_found", 409: "conflict", 422: "validation_error"}


_error = error_response


# --- middleware -----------------------------------------------------------------------------------------


class BearerAuthMiddleware:
    """Refuses every ``/api/v1`` request without the admin bearer token, before its body is even read."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            supplied = b""
            for name, value in scope.get("headers", []):
                if name.lower() == b"authorization":
                    supplied = value
                    break
            if not supplied:
                response = _error(
                    401,
                    "unauthorized",
                    "authorization",
                    "Authorization: Bearer <token> is required",
                    {"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
            if not hmac.compare_digest(supplied, self._expected):
                response = _error(
                    401,
                    "unauthorized",
                    "authorization",
                    "the bearer token is not valid",
                    {"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# --- exception handlers ---------------------------------------------------------------------------------


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):  # pragma: no cover - json.dumps(default=str) hardly fails
        return repr(value)


def _describe(field: str, error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    message = str(error.get("msg", "is invalid"))
    if kind == "missing":
        return f"{field} is required"
    if kind == "json_invalid":
        detail = (error.get("ctx") or {}).get("error", "")
        return f"body is not valid JSON ({detail})" if detail else "body is not valid JSON"
    if kind == "extra_forbidden":
        return f"{field} is not a field of this request, got {_shown(error.get('input'))}"
    for prefix, replacement in (
        ("Value error, ", ""),
        ("Input should be", "must be"),
        ("String should", "must"),
        ("Value should", "must"),
        ("List should", "must"),
    ):
        if message.startswith(prefix):
            message = replacement + message[len(prefix) :]
            break
    message = message.strip()
    return f"{field} {message}, got {_shown(error.get('input'))}"


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        source = parts.pop(0)
        if not parts:
            return "body" if source == "body" else str(source)
        if source == "body" and isinstance(parts[0], int):  # position of a JSON syntax error
            return "body"
        if source == "header":
            return str(parts[0]).lower().replace("-", "_")
    return ".".join(str(part) for part in parts) or "body"


async def _validation_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if not errors:  # pragma: no cover - FastAPI always reports at least one
        return _error(422, "validation_error", "body", "request is invalid")
    first = errors[0]
    field = _field(first.get("loc", ()))
    return _error(422, "validation_error", field, _describe(field, first))


async def _api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _error(exc.status, exc.code, exc.field, exc.message)


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return _error(404, "not_found", "path", f"no endpoint at {request.url.path}")
    if exc.status_code == 405:
        return _error(405, "validation_error", "method", f"{request.method} is not allowed on {request.url.path}")
    if exc.status_code == 400:  # FastAPI: a body it could not parse
        return _error(422, "validation_error", "body", "body is not valid JSON")
    code = _STATUS_CODES.get(exc.status_code, "internal_error" if exc.status_code >= 500 else "validation_error")
    return _error(exc.status_code, code, None, str(exc.detail), dict(exc.headers or {}))


# --- dependencies ---------------------------------------------------------------------------------------


def _db(request: Request) -> Iterator[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        yield session


def _swept_db(session: Annotated[Session, Depends(_db)]) -> Session:
    """A session after expired vouchers and sessions have been marked ``expired`` (committed on its own)."""
    service.sweep_expired(session)
    return session


DB = Annotated[Session, Depends(_db)]
SweptDB = Annotated[Session, Depends(_swept_db)]
CustomerId = Annotated[int, Path(description="Customer id")]
PackageId = Annotated[int, Path(description="Package id")]
VoucherId = Annotated[int, Path(description="Voucher id")]
PaymentId = Annotated[int, Path(description="Payment id")]
InvoiceId = Annotated[int, Path(description="Invoice id")]
TransactionId = Annotated[int, Path(description="Transaction id")]
RouterId = Annotated[int, Path(description="Router id")]
SessionId = Annotated[int, Path(description="Session id")]
Filter = Annotated[str | None, Query()]
IdempotencyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]
FaultHeader = Annotated[
    str | None,
    Header(
        alias=FAULT_HEADER,
        description="Lab-only: 'after-invoice' fails the completion after the ledger and invoice are flushed; "
        "honoured only when the service runs with BILLING_FAULT_INJECTION=1.",
    ),
]


def _blank_to_none(value: str | None) -> str | None:
    return value if value not in (None, "") else None


# --- routes ---------------------------------------------------------------------------------------------


def _build_router(fault_injection: bool) -> APIRouter:
    api = APIRouter(
        prefix=API_PREFIX,
        responses=ERROR_RESPONSES,
        # Documents the scheme; BearerAuthMiddleware enforces it (before the body is parsed).
        dependencies=[Security(HTTPBearer(auto_error=False, description="The admin token"))],
    )

    # customers
    @api.post("/customers", status_code=201, tags=["customers"])
    def create_customer(body: CustomerCreate, db: DB) -> CustomerOut:
        return CustomerOut.model_validate(service.create_customer(db, body))

    @api.get("/customers", tags=["customers"])
    def list_customers(db: DB, site: Filter = None, email: Filter = None, phone: Filter = None) -> Page[CustomerOut]:
        rows = service.list_customers(
            db, site=_blank_to_none(site), email=_blank_to_none(email), phone=_blank_to_none(phone)
        )
        return Page[CustomerOut](data=[CustomerOut.model_validate(row) for row in rows])

    @api.get("/customers/{customer_id}", tags=["customers"])
    def get_customer(customer_id: CustomerId, db: DB) -> CustomerOut:
        return CustomerOut.model_validate(service.get_customer(db, customer_id))

    @api.patch("/customers/{customer_id}", tags=["customers"])
    def update_customer(customer_id: CustomerId, body: CustomerUpdate, db: DB) -> CustomerOut:
        return CustomerOut.model_validate(service.update_customer(db, customer_id, body))

    @api.get("/customers/{customer_id}/balance", tags=["customers"])
    def get_customer_balance(customer_id: CustomerId, db: DB) -> BalanceOut:
        return BalanceOut.model_validate(service.get_balance(db, customer_id))

    @api.get("/customers/{customer_id}/transactions", tags=["customers"])
    def list_customer_transactions(customer_id: CustomerId, db: DB) -> Page[TransactionOut]:
        rows = service.list_customer_transactions(db, customer_id)
        return Page[TransactionOut](data=[TransactionOut.model_validate(row) for row in rows])

    @api.get("/customers/{customer_id}/payments", tags=["customers"])
    def list_customer_payments(customer_id: CustomerId, db: DB) -> Page[PaymentOut]:
        rows = service.list_customer_payments(db, customer_id)
        return Page[PaymentOut](data=[PaymentOut.model_validate(row) for row in rows])

    @api.get("/customers/{customer_id}/invoices", tags=["customers"])
    def list_customer_invoices(customer_id: CustomerId, db: DB) -> Page[InvoiceOut]:
        rows = service.list_customer_invoices(db, customer_id)
        return Page[InvoiceOut](data=[InvoiceOut.model_validate(row) for row in rows])

    # packages
    @api.post("/packages", status_code=201, tags=["packages"])
    def create_package(body: PackageCreate, db: DB) -> PackageOut:
        return PackageOut.model_validate(service.create_package(db, body))

    @api.get("/packages", tags=["packages"])
    def list_packages(db: DB, active: Annotated[bool | None, Query()] = None, site: Filter = None) -> Page[PackageOut]:
        rows = service.list_packages(db, active=active, site=_blank_to_none(site))
        return Page[PackageOut](data=[PackageOut.model_validate(row) for row in rows])

    @api.get("/packages/{package_id}", tags=["packages"])
    def get_package(package_id: PackageId, db: DB) -> PackageOut:
        return PackageOut.model_validate(service.get_package(db, package_id))

    @api.patch("/packages/{package_id}", tags=["packages"])
    def update_package(package_id: PackageId, body: PackageUpdate, db: DB) -> PackageOut:
        return PackageOut.model_validate(service.update_package(db, package_id, body))

    # vouchers
    @api.post("/vouchers", status_code=201, tags=["vouchers"])
    def create_voucher(body: VoucherCreate, db: SweptDB) -> VoucherOut:
        return VoucherOut.model_validate(service.create_voucher(db, body))

    @api.get("/vouchers", tags=["vouchers"])
    def list_vouchers(
        db: SweptDB,
        code: Filter = None,
        customer_id: Annotated[int | None, Query()] = None,
        status: Annotated[VoucherStatus | None, Query()] = None,
    ) -> Page[VoucherOut]:
        rows = service.list_vouchers(db, code=_blank_to_none(code), customer_id=customer_id, status=status)
        return Page[VoucherOut](data=[VoucherOut.model_validate(row) for row in rows])

    @api.get("/vouchers/{voucher_id}", tags=["vouchers"])
    def get_voucher(voucher_id: VoucherId, db: SweptDB) -> VoucherOut:
        return VoucherOut.model_validate(service.get_voucher(db, voucher_id))

    @api.post("/vouchers/{voucher_id}/expire", tags=["vouchers"])
    def expire_voucher(voucher_id: VoucherId, db: SweptDB) -> VoucherOut:
        return VoucherOut.model_validate(service.expire_voucher(db, voucher_id))

    # payments
    @api.post(
        "/payments",
        status_code=201,
        tags=["payments"],
        responses={200: {"model": PaymentOut, "description": "Replay of an idempotency key: the first payment"}},
    )
    def create_payment(
        body: PaymentCreate,
        response: Response,
        db: SweptDB,
        idempotency_key: IdempotencyHeader = None,
    ) -> PaymentOut:
        payment, created = service.create_payment(db, body, idempotency_key)
        if not created:
            response.status_code = 200
        return PaymentOut.model_validate(payment)

    @api.get("/payments", tags=["payments"])
    def list_payments(
        db: DB,
        customer_id: Annotated[int | None, Query()] = None,
        status: Annotated[PaymentStatus | None, Query()] = None,
    ) -> Page[PaymentOut]:
        rows = service.list_payments(db, customer_id=customer_id, status=status)
        return Page[PaymentOut](data=[PaymentOut.model_validate(row) for row in rows])

    @api.get("/payments/{payment_id}", tags=["payments"])
    def get_payment(payment_id: PaymentId, db: DB) -> PaymentOut:
        return PaymentOut.model_validate(service.get_payment(db, payment_id))

    @api.post("/payments/{payment_id}/complete", tags=["payments"])
    def complete_payment(
        payment_id: PaymentId, db: SweptDB, body: PaymentComplete | None = None, fault: FaultHeader = None
    ) -> PaymentOut:
        reference = body.reference if body is not None else None
        payment = service.complete_payment(db, payment_id, reference, fault if fault_injection else None)
        return PaymentOut.model_validate(payment)

    @api.post("/payments/{payment_id}/fail", tags=["payments"])
    def fail_payment(payment_id: PaymentId, body: PaymentFail, db: DB) -> PaymentOut:
        return PaymentOut.model_validate(service.fail_payment(db, payment_id, body.reason))

    # invoices
    @api.get("/invoices", tags=["invoices"])
    def list_invoices(
        db: DB,
        payment_id: Annotated[int | None, Query()] = None,
        customer_id: Annotated[int | None, Query()] = None,
    ) -> Page[InvoiceOut]:
        rows = service.list_invoices(db, payment_id=payment_id, customer_id=customer_id)
        return Page[InvoiceOut](data=[InvoiceOut.model_validate(row) for row in rows])

    @api.get("/invoices/{invoice_id}", tags=["invoices"])
    def get_invoice(invoice_id: InvoiceId, db: DB) -> InvoiceOut:
        return InvoiceOut.model_validate(service.get_invoice(db, invoice_id))

    # transactions
    @api.get("/transactions", tags=["transactions"])
    def list_transactions(
        db: DB,
        customer_id: Annotated[int | None, Query()] = None,
        payment_id: Annotated[int | None, Query()] = None,
    ) -> Page[TransactionOut]:
        rows = service.list_transactions(db, customer_id=customer_id, payment_id=payment_id)
        return Page[TransactionOut](data=[TransactionOut.model_validate(row) for row in rows])

    @api.get("/transactions/{transaction_id}", tags=["transactions"])
    def get_transaction(transaction_id: TransactionId, db: DB) -> TransactionOut:
        return TransactionOut.model_validate(service.get_transaction(db, transaction_id))

    # routers
    def router_out(view: service.RouterView) -> RouterOut:
        row = view.router
        fields = {name: getattr(row, name) for name in ("id", "name", "ip", "site", "status", "created_at")}
        return RouterOut.model_validate({**fields, "active_sessions": view.active_sessions})

    @api.post("/routers", status_code=201, tags=["routers"])
    def create_router(body: RouterCreate, db: DB) -> RouterOut:
        return router_out(service.create_router(db, body))

    @api.get("/routers", tags=["routers"])
    def list_routers(
        db: SweptDB, site: Filter = None, status: Annotated[RouterStatus | None, Query()] = None
    ) -> Page[RouterOut]:
        return Page[RouterOut](
            data=[router_out(view) for view in service.list_routers(db, site=_blank_to_none(site), status=status)]
        )

    @api.get("/routers/{router_id}", tags=["routers"])
    def get_router(router_id: RouterId, db: SweptDB) -> RouterOut:
        return router_out(service.get_router(db, router_id))

    @api.patch("/routers/{router_id}", tags=["routers"])
    def update_router(router_id: RouterId, body: RouterUpdate, db: SweptDB) -> RouterOut:
        return router_out(service.update_router(db, router_id, body))

    # sessions
    @api.post("/sessions", status_code=201, tags=["sessions"])
    def create_session(body: SessionCreate, db: SweptDB) -> SessionOut:
        return SessionOut.model_validate(service.create_session(db, body))

    @api.get("/sessions", tags=["sessions"])
    def list_sessions(
        db: SweptDB,
        router_id: Annotated[int | None, Query()] = None,
        customer_id: Annotated[int | None, Query()] = None,
        status: Annotated[SessionStatus | None, Query()] = None,
    ) -> Page[SessionOut]:
        rows = service.list_sessions(db, router_id=router_id, customer_id=customer_id, status=status)
        return Page[SessionOut](data=[SessionOut.model_validate(row) for row in rows])

    @api.get("/sessions/{session_id}", tags=["sessions"])
    def get_session(session_id: SessionId, db: SweptDB) -> SessionOut:
        return SessionOut.model_validate(service.get_session(db, session_id))

    @api.post("/sessions/{session_id}/terminate", tags=["sessions"])
    def terminate_session(session_id: SessionId, db: SweptDB) -> SessionOut:
        return SessionOut.model_validate(service.terminate_session(db, session_id))

    @api.post("/sessions/{session_id}/usage", tags=["sessions"])
    def record_session_usage(session_id: SessionId, body: SessionUsage, db: SweptDB) -> SessionOut:
        return SessionOut.model_validate(service.record_usage(db, session_id, body.data_mb))

    # dashboard
    @api.get("/dashboard", tags=["dashboard"])
    def get_dashboard(db: SweptDB, site: Filter = None) -> DashboardOut:
        figures = service.dashboard(db, _blank_to_none(site))
        return DashboardOut(
            site=figures.site,
            generated_at=figures.generated_at,
            customers=TotalActive(**figures.customers),
            packages=TotalActive(**figures.packages),
            vouchers=VoucherFigures(**figures.vouchers),
            payments=PaymentFigures(**figures.payments),
            sessions=TotalActive(**figures.sessions),
            routers=RouterFigures(**figures.routers),
            revenue=figures.revenue_cents,
            balances=BalanceFigures(total=figures.balances_cents),
        )

    return api


# --- factory --------------------------------------------------------------------------------------------


def create_app(database_url: str, admin_token: str, fault_injection: bool = False) -> FastAPI:
    """The billing app on ``database_url`` (tables created when missing), guarded by ``admin_token``."""
    if not admin_token:
        raise ValueError("admin_token must not be empty")
    database = dialect_label(database_url)
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="telco-robot lab billing service",
        description=DESCRIPTION,
        version="1.0.0",
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.database = database
    app.state.fault_injection = fault_injection

    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    # Added last = outermost: auth answers before anything else; errors inside become 500 bodies.
    app.add_middleware(BlankQueryMiddleware)
    app.add_middleware(InternalErrorMiddleware, log=logger)
    app.add_middleware(BearerAuthMiddleware, token=admin_token)

    @app.get("/health", tags=["health"], responses={503: {"model": ErrorOut, "description": "Database down"}})
    def health(db: DB) -> HealthOut:
        try:
            service.check_database(db)
        except Exception as error:
            logger.exception("Health check: the database does not answer")
            raise UnavailableError("database", "the database does not answer") from error
        return HealthOut(status="ok", database=database)

    app.include_router(_build_router(fault_injection))
    return app
