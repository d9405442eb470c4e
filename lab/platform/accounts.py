"""Customer accounts (one per gateway consumer), onboarding with an SMS code, and webhook registrations.

An account exists from the first change its consumer makes; it is ``unverified`` until onboarding verifies
its phone, then ``active``. Read-only calls of a consumer without an account see empty lists.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from lab.platform import messaging
from lab.platform.context import Platform
from lab.platform.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from lab.platform.models import Account, Onboarding, SmsMessage, Webhook, WebhookDelivery, utcnow
from lab.platform.schemas import (
    AccountOut,
    DeliveryOut,
    OnboardingCreate,
    OnboardingOut,
    WebhookCreate,
    WebhookOut,
)
from lab.platform.webhooks import enqueue

log = logging.getLogger("lab.platform.accounts")

MAX_CODE_ATTEMPTS = 5
NO_ACCOUNT = -1  # an account id that matches nothing


@dataclass(frozen=True)
class Caller:
    """Who is calling, as the gateway said: ``X-Consumer-Username`` (else ``X-Consumer-ID``) and the consumer id."""

    username: str
    consumer_id: str | None


def find_account(session: Session, caller: Caller) -> Account | None:
    return session.scalars(select(Account).where(Account.username == caller.username)).first()


def account_id(session: Session, caller: Caller) -> int:
    """The caller's account id, or an id that matches nothing when the consumer has no account yet."""
    account = find_account(session, caller)
    return account.id if account is not None else NO_ACCOUNT


def ensure_account(session: Session, caller: Caller) -> Account:
    """The caller's account, created ``unverified`` in the current transaction when missing."""
    account = find_account(session, caller)
    if account is None:
        account = Account(username=caller.username, consumer_id=caller.consumer_id, status="unverified")
        session.add(account)
        session.flush()
    elif caller.consumer_id and account.consumer_id != caller.consumer_id:
        account.consumer_id = caller.consumer_id  # the consumer was re-created under the same name
    return account


def require_active(account: Account) -> None:
    if account.status != "active":
        raise ForbiddenError(
            "account",
            f"account '{account.username}' is not verified yet: complete onboarding (POST /onboarding, "
            "then POST /onboarding/{id}/verify with the SMS code) first",
        )


def account_out(account: Account | None, caller: Caller) -> AccountOut:
    if account is None:
        return AccountOut(
            username=caller.username,
            consumer_id=caller.consumer_id,
            status="unverified",
            name=None,
            email=None,
            phone=None,
            created_at=None,
            verified_at=None,
        )
    return AccountOut.model_validate(account, from_attributes=True)


# --- onboarding -------------------------------------------------------------------------------------------


def start_onboarding(platform: Platform, caller: Caller, body: OnboardingCreate) -> OnboardingOut:
    """Record the sign-up and text a 6-digit code to ``phone``; nothing stays written when the SMS cannot go."""
    code = f"{secrets.randbelow(10**6):06d}"
    with platform.sessions() as session:
        created_account = find_account(session, caller) is None
        account = ensure_account(session, caller)
        if account.status == "active":
            raise ConflictError("account", f"account '{account.username}' is already verified")
        _email_free(session, account, body.email)
        superseded = list(
            session.scalars(
                select(Onboarding.id).where(Onboarding.account_id == account.id, Onboarding.status == "pending")
            )
        )
        if superseded:
            session.execute(update(Onboarding).where(Onboarding.id.in_(superseded)).values(status="superseded"))
        onboarding = Onboarding(
            account_id=account.id,
            name=body.name,
            email=body.email,
            phone=body.phone,
            code_hash="",
            expires_at=utcnow() + timedelta(seconds=platform.config.tuning.onboarding_code_ttl),
        )
        session.add(onboarding)
        session.flush()
        onboarding.code_hash = _code_hash(platform, onboarding.id, code)
        session.commit()
        onboarding_id, account_row_id = onboarding.id, account.id
    text = (
        f"Your verification code is {code}. It expires in {int(platform.config.tuning.onboarding_code_ttl // 60)} min."
    )
    try:
        sms = messaging.submit(
            platform,
            account_id=account_row_id,
            to=body.phone,
            sender=platform.config.tuning.onboarding_sender,
            text=text,
            coding="gsm7",
            purpose="onboarding",
        )
    except Exception:
        _forget_onboarding(platform, onboarding_id, superseded, account_row_id if created_account else None)
        raise
    with platform.sessions() as session:
        onboarding_row = session.get(Onboarding, onboarding_id)
        assert onboarding_row is not None
        onboarding_row.sms_id = sms.id
        session.commit()
        owner = session.get(Account, account_row_id)
        assert owner is not None
        log.info("onboarding %d of %s: code sent to %s", onboarding_id, owner.username, body.phone)
        return onboarding_out(onboarding_row, owner, caller)


def _forget_onboarding(
    platform: Platform, onboarding_id: int, superseded: list[int], created_account_id: int | None
) -> None:
    """Undo a sign-up whose code could not be sent: a rejected request writes nothing."""
    with platform.sessions() as session:
        session.execute(delete(Onboarding).where(Onboarding.id == onboarding_id))
        if superseded:
            session.execute(update(Onboarding).where(Onboarding.id.in_(superseded)).values(status="pending"))
        if created_account_id is not None:
            session.execute(delete(SmsMessage).where(SmsMessage.account_id == created_account_id))
            session.execute(delete(Account).where(Account.id == created_account_id))
        session.commit()


def get_onboarding(platform: Platform, caller: Caller, onboarding_id: int) -> OnboardingOut:
    with platform.sessions() as session:
        onboarding = _onboarding(session, caller, onboarding_id)
        account = session.get(Account, onboarding.account_id)
        assert account is not None
        return onboarding_out(onboarding, account, caller)


def verify_onboarding(platform: Platform, caller: Caller, onboarding_id: int, code: str) -> OnboardingOut:
    """Check the code: right → the account is ``active``; wrong → 422 (counted); after 5 wrong ones → 409."""
    with platform.sessions() as session:
        onboarding = _onboarding(session, caller, onboarding_id)
        account = session.get(Account, onboarding.account_id)
        assert account is not None
        if onboarding.status == "verified":
            raise ConflictError("onboarding_id", f"onboarding {onboarding_id} is already verified")
        if onboarding.status == "superseded":
            raise ConflictError("onboarding_id", f"onboarding {onboarding_id} was replaced by a newer sign-up")
        if onboarding.status == "locked" or onboarding.attempts >= MAX_CODE_ATTEMPTS:
            raise ConflictError(
                "code",
                f"onboarding {onboarding_id} is locked after {MAX_CODE_ATTEMPTS} wrong codes; "
                "start again with POST /onboarding",
            )
        if onboarding.expires_at <= utcnow():
            raise ConflictError("code", f"the code of onboarding {onboarding_id} has expired; start again")
        if not hmac.compare_digest(_code_hash(platform, onboarding.id, code), onboarding.code_hash):
            # the one write a rejected request makes: the attempt counts
            onboarding.attempts += 1
            left = MAX_CODE_ATTEMPTS - onboarding.attempts
            if left <= 0:
                onboarding.status = "locked"
            session.commit()
            detail = f"{left} attempt(s) left" if left > 0 else "onboarding is now locked; start again"
            raise InvalidError("code", f"code is not the one sent to {onboarding.phone}; {detail}")
        _email_free(session, account, onboarding.email)
        now = utcnow()
        onboarding.status = "verified"
        onboarding.verified_at = now
        account.status = "active"
        account.verified_at = now
        account.name, account.email, account.phone = onboarding.name, onboarding.email, onboarding.phone
        session.flush()
        result = onboarding_out(onboarding, account, caller)
        enqueue(session, account, "onboarding.verified", result.model_dump(mode="json"))
        session.commit()
    platform.webhook_wakeup.set()
    log.info("onboarding %d verified: account %s is active", onboarding_id, caller.username)
    return result


def _onboarding(session: Session, caller: Caller, onboarding_id: int) -> Onboarding:
    row = session.scalars(
        select(Onboarding).where(Onboarding.id == onboarding_id, Onboarding.account_id == account_id(session, caller))
    ).first()
    if row is None:
        raise NotFoundError("onboarding_id", f"onboarding_id {onboarding_id} names no onboarding of this account")
    return row


def _email_free(session: Session, account: Account, email: str) -> None:
    other = session.scalars(
        select(Account.username).where(Account.email == email, Account.id != account.id, Account.status == "active")
    ).first()
    if other is not None:
        raise ConflictError("email", f"email '{email}' belongs to another verified account")


def _code_hash(platform: Platform, onboarding_id: int, code: str) -> str:
    return platform.token("onboarding", f"{onboarding_id}:{code}")


def onboarding_out(onboarding: Onboarding, account: Account, caller: Caller) -> OnboardingOut:
    return OnboardingOut(
        id=onboarding.id,
        name=onboarding.name,
        email=onboarding.email,
        phone=onboarding.phone,
        status=onboarding.status,  # type: ignore[arg-type]
        attempts_left=max(0, MAX_CODE_ATTEMPTS - onboarding.attempts),
        sms_id=onboarding.sms_id,
        expires_at=onboarding.expires_at,
        created_at=onboarding.created_at,
        verified_at=onboarding.verified_at,
        account=account_out(account, caller),
    )


# --- webhooks ---------------------------------------------------------------------------------------------


def create_webhook(platform: Platform, caller: Caller, body: WebhookCreate) -> WebhookOut:
    with platform.sessions() as session:
        account = ensure_account(session, caller)
        hook = Webhook(
            account_id=account.id,
            url=body.url,
            events=list(body.events),
            secret=body.secret or f"whsec_{secrets.token_hex(24)}",
            description=body.description,
        )
        session.add(hook)
        session.commit()
        return webhook_out(hook, with_secret=True)


def list_webhooks(platform: Platform, caller: Caller) -> list[WebhookOut]:
    with platform.sessions() as session:
        rows = session.scalars(
            select(Webhook).where(Webhook.account_id == account_id(session, caller)).order_by(Webhook.id)
        ).all()
        return [webhook_out(row) for row in rows]


def get_webhook(platform: Platform, caller: Caller, webhook_id: int) -> WebhookOut:
    with platform.sessions() as session:
        return webhook_out(_webhook(session, caller, webhook_id))


def delete_webhook(platform: Platform, caller: Caller, webhook_id: int) -> None:
    with platform.sessions() as session:
        hook = _webhook(session, caller, webhook_id)
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
        session.delete(hook)
        session.commit()


def list_deliveries(platform: Platform, caller: Caller, webhook_id: int) -> list[DeliveryOut]:
    with platform.sessions() as session:
        hook = _webhook(session, caller, webhook_id)
        rows = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id).order_by(WebhookDelivery.created_at)
        ).all()
        return [DeliveryOut.model_validate(row, from_attributes=True) for row in rows]


def _webhook(session: Session, caller: Caller, webhook_id: int) -> Webhook:
    row = session.scalars(
        select(Webhook).where(Webhook.id == webhook_id, Webhook.account_id == account_id(session, caller))
    ).first()
    if row is None:
        raise NotFoundError("webhook_id", f"webhook_id {webhook_id} names no webhook of this account")
    return row


def webhook_out(hook: Webhook, *, with_secret: bool = False) -> WebhookOut:
    return WebhookOut(
        id=hook.id,
        url=hook.url,
        events=list(hook.events),
        description=hook.description,
        secret=hook.secret if with_secret else None,
        created_at=hook.created_at,
    )
