"""Staff accounts: who may log in to /admin, in which role, and how guessing is slowed.

Rule: passwords are hashed with argon2id (argon2-cffi) and never stored, shown or logged.
A login is refused in the same words whether the name is unknown, the password wrong or
the account locked or switched off, so the login page never tells which names exist (an
unknown name still costs one hash check). After `web.login_failures_allowed` failures an
account, and separately a client address, must wait `web.login_lockout_minutes`; while
it waits no password is even checked. Logins, refusals and every change to an account
are audited under the staff member's name; a name that matches no account is never
written down (it may be a password typed in the wrong box).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from assistant.booking import audit
from assistant.booking.inputs import ServiceContext
from assistant.booking.models import LoginThrottle, StaffUser
from assistant.config import WebSettings
from assistant.i18n import N_, ExplainedError

ROLES = ("admin", "clerk")
ROLE_LABELS = {"admin": N_("Administrator"), "clerk": N_("Desk clerk")}
MIN_PASSWORD_LENGTH = 10
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

_hasher = PasswordHasher()
# Checked against when the name is unknown, so a refusal takes as long either way.
_UNKNOWN_USER_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class StaffView:
    id: int
    username: str
    role: str
    active: bool = True
    last_login_at: datetime | None = None

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]


@dataclass(frozen=True)
class LoginRefused:
    """Wrong name or password, or a locked or switched-off account: told apart only in
    the audit trail and the log, never on the page."""

    locked_until: datetime | None = None  # set when this client or account must wait


class AccountError(ExplainedError):
    """A username or password that can't be used; `message` (a msgid) and `params` say
    why, for the form, in the staff member's language."""


def _view(user: StaffUser) -> StaffView:
    return StaffView(user.id, user.username, user.role, user.active, user.last_login_at)


def normalise_username(username: str) -> str:
    return (username or "").strip().lower()


def check_new_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(N_("The password needs at least {n} characters."), n=MIN_PASSWORD_LENGTH)


def create_user(ctx: ServiceContext, *, username: str, password: str, role: str, now: datetime,
                by: str = "system") -> StaffView:
    """`by`: who creates it ("system" for the command line and the demo)."""
    name = normalise_username(username)
    if not USERNAME.match(name):
        raise AccountError(N_("A username is 2 to 64 letters, digits, dots, dashes or underscores."))
    if role not in ROLES:
        raise AccountError(N_("The role must be one of: {roles}."), roles=", ".join(ROLES))
    check_new_password(password)
    with ctx.uow() as uow:
        session = uow.session
        if session.execute(select(StaffUser.id).where(StaffUser.username == name)).first():
            raise AccountError(N_("That username is taken."))
        user = StaffUser(username=name, password_hash=_hasher.hash(password), role=role,
                         active=True, created_at=now)
        session.add(user)
        session.flush()
        audit.append(session, ctx.keyring.audit_key, actor=_actor(by), action="staff.created",
                     subject=f"staff:{name}", details={"role": role}, at=now)
        uow.commit()
        return _view(user)


def set_active(ctx: ServiceContext, *, user_id: int, active: bool, now: datetime, by: str) -> StaffView | None:
    with ctx.uow() as uow:
        user = uow.session.get(StaffUser, user_id)
        if user is None:
            return None
        if user.active != active:
            user.active = active
            audit.append(uow.session, ctx.keyring.audit_key, actor=_actor(by),
                         action="staff.enabled" if active else "staff.disabled",
                         subject=f"staff:{user.username}", details={}, at=now)
            uow.commit()
        return _view(user)


def set_password(ctx: ServiceContext, *, user_id: int, password: str, now: datetime, by: str) -> StaffView | None:
    check_new_password(password)
    with ctx.uow() as uow:
        user = uow.session.get(StaffUser, user_id)
        if user is None:
            return None
        user.password_hash = _hasher.hash(password)
        audit.append(uow.session, ctx.keyring.audit_key, actor=_actor(by), action="staff.password_set",
                     subject=f"staff:{user.username}", details={}, at=now)
        uow.commit()
        return _view(user)


def list_users(ctx: ServiceContext) -> list[StaffView]:
    with ctx.uow.read_only() as uow:
        return [_view(u) for u in uow.session.execute(select(StaffUser).order_by(StaffUser.username)).scalars()]


def active_user(ctx: ServiceContext, user_id: int) -> StaffView | None:
    with ctx.uow.read_only() as uow:
        user = uow.session.get(StaffUser, user_id)
        return _view(user) if user is not None and user.active else None


def has_users(ctx: ServiceContext) -> bool:
    with ctx.uow.read_only() as uow:
        return uow.session.execute(select(StaffUser.id).limit(1)).first() is not None


def log_in(ctx: ServiceContext, *, username: str, password: str, client: str, now: datetime,
           settings: WebSettings) -> StaffView | LoginRefused:
    """`client`: the caller's address, kept only as a keyed hash."""
    name = normalise_username(username)
    keys = (f"user:{name[:64]}", "ip:" + hmac.new(ctx.keyring.blind_index_key, client.encode(),
                                                  hashlib.sha256).hexdigest()[:40])
    with ctx.uow.read_only() as uow:
        waits = [t.locked_until for t in uow.session.execute(
            select(LoginThrottle).where(LoginThrottle.key.in_(keys))).scalars()
            if t.locked_until is not None and t.locked_until > now]
        found = uow.session.execute(select(StaffUser).where(StaffUser.username == name)).scalar_one_or_none()
        stored_hash = found.password_hash if found is not None else _UNKNOWN_USER_HASH
        user = _view(found) if found is not None else None
    if waits:
        _record(ctx, keys, user, now, settings, outcome="locked")
        return LoginRefused(max(waits))
    ok = _verify(stored_hash, password) and user is not None and user.active
    locked = _record(ctx, keys, user, now, settings, outcome="ok" if ok else _why(user))
    if not ok:
        return LoginRefused(locked)
    return user


def new_demo_password() -> str:
    return secrets.token_urlsafe(12)


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


def _why(user: StaffView | None) -> str:
    if user is None:
        return "unknown_user"
    return "disabled" if not user.active else "wrong_password"


def _record(ctx: ServiceContext, keys: tuple[str, str], user: StaffView | None, now: datetime,
            settings: WebSettings, *, outcome: str) -> datetime | None:
    """Audit the attempt; count a failure (`outcome` unknown_user, wrong_password or
    disabled) against the account and the client, or clear the account's count ("ok");
    "locked" changes no count. Returns how long the caller must now wait, if at all."""
    locked_until = None
    with ctx.uow() as uow:
        session = uow.session
        for key in keys if outcome != "locked" else ():
            row = session.get(LoginThrottle, key, with_for_update=True)
            if outcome == "ok":
                if row is not None and key.startswith("user:"):
                    session.delete(row)
                continue
            if row is None:
                row = LoginThrottle(key=key, failures=0, updated_at=now)
                session.add(row)
            row.failures += 1
            row.updated_at = now
            if row.failures >= settings.login_failures_allowed:
                row.failures = 0
                row.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
                locked_until = row.locked_until
        subject = f"staff:{user.username}" if user is not None else "staff:unknown"
        if outcome == "ok":
            session.get(StaffUser, user.id).last_login_at = now
        audit.append(session, ctx.keyring.audit_key, actor=_actor(subject.split(":", 1)[1]),
                     action="staff.login" if outcome == "ok" else "staff.login_refused", subject=subject,
                     details={} if outcome == "ok" else {"reason": outcome}, at=now)
        uow.commit()
    return locked_until


def _actor(username: str) -> audit.Actor:
    return audit.SYSTEM if username == "system" else audit.Actor(f"staff:{username}", "web")
