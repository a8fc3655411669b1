"""Analyst accounts and server-side sessions for the review screen.

Passwords are hashed with argon2id (argon2-cffi's defaults). A session is a
random token in an HttpOnly cookie; the store keeps only its sha256, with the
session's CSRF token, an idle expiry that slides with use and an absolute
expiry that does not. Changing a password or removing a user ends all of that
user's sessions.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import DateTime, ForeignKey, String, Text, delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.store import Base, session

ROLES = ("analyst", "admin")
MIN_PASSWORD_LENGTH = 10
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,119}$")
DEFAULT_IDLE = timedelta(hours=4)
DEFAULT_ABSOLUTE = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=5)  # sliding expiry is written at most this often (fewer writes)

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name takes as long as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """A refused account operation (unknown user, bad role, short password, ...)."""


class UserRow(Base):
    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebSessionRow(Base):
    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    absolute_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class WebSession:
    user: User
    csrf_token: str
    expires_at: datetime


def now_utc() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


# --------------------------------------------------------------------------- users


def add_user(engine: Engine, name: str, password: str, role: str = "analyst") -> User:
    if not NAME_PATTERN.match(name):
        raise AccountError(f"{name!r}: a user name is letters, digits and . _ @ - (at most 120)")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
    _check_password(password)
    hashed = hash_password(password)
    with session(engine) as s:
        if s.get(UserRow, name) is not None:
            raise AccountError(f"user {name!r} already exists")
        now = now_utc()
        s.add(UserRow(name=name, password_hash=hashed, role=role, created_at=now, password_changed_at=now))
    return User(name, role)


def remove_user(engine: Engine, name: str) -> None:
    """Delete the account and its sessions; the user's review decisions stay in the history."""
    with session(engine) as s:
        row = s.get(UserRow, name)
        if row is None:
            raise AccountError(f"no user {name!r}")
        s.execute(delete(WebSessionRow).where(WebSessionRow.user_name == name))
        s.delete(row)


def set_password(engine: Engine, name: str, password: str) -> None:
    """New password; every open session of the user ends."""
    _check_password(password)
    hashed = hash_password(password)
    with session(engine) as s:
        row = s.get(UserRow, name)
        if row is None:
            raise AccountError(f"no user {name!r}")
        row.password_hash = hashed
        row.password_changed_at = now_utc()
        s.execute(delete(WebSessionRow).where(WebSessionRow.user_name == name))


def list_users(engine: Engine) -> list[User]:
    with session(engine) as s:
        return [User(r.name, r.role) for r in s.scalars(select(UserRow).order_by(UserRow.name))]


def get_user(engine: Engine, name: str) -> User | None:
    with session(engine) as s:
        row = s.get(UserRow, name)
        return User(row.name, row.role) if row else None


def authenticate(engine: Engine, name: str, password: str) -> User | None:
    """The user when name and password match, else None (same work either way)."""
    with session(engine) as s:
        row = s.get(UserRow, name)
        stored = row.password_hash if row else _dummy_hash()
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if _hasher.check_needs_rehash(stored):
            row.password_hash = hash_password(password)
        return User(row.name, row.role)


# --------------------------------------------------------------------------- sessions


def create_session(
    engine: Engine,
    user: User,
    now: datetime | None = None,
    idle: timedelta = DEFAULT_IDLE,
    absolute: timedelta = DEFAULT_ABSOLUTE,
) -> tuple[str, WebSession]:
    """A new session: returns the cookie value (shown once, stored only as a hash) and the session."""
    now = now or now_utc()
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = min(now + idle, now + absolute)
    with session(engine) as s:
        s.execute(delete(WebSessionRow).where(WebSessionRow.absolute_expires_at < now))  # tidy up old ones
        s.add(
            WebSessionRow(
                token_hash=_token_hash(token),
                user_name=user.name,
                csrf_token=csrf,
                created_at=now,
                last_seen_at=now,
                expires_at=expires,
                absolute_expires_at=now + absolute,
            )
        )
    return token, WebSession(user, csrf, expires)


def session_for(
    engine: Engine, token: str | None, now: datetime | None = None, idle: timedelta = DEFAULT_IDLE
) -> WebSession | None:
    """The live session for a cookie value, its idle expiry extended; None when unknown or expired."""
    if not token:
        return None
    now = now or now_utc()
    key = _token_hash(token)
    with session(engine) as s:
        row = s.get(WebSessionRow, key)
        if row is None:
            return None
        user = s.get(UserRow, row.user_name)
        if user is None or now >= _aware(row.expires_at) or now >= _aware(row.absolute_expires_at):
            s.delete(row)
            return None
        expires = _aware(row.expires_at)
        if now - _aware(row.last_seen_at) >= TOUCH_EVERY:
            expires = min(now + idle, _aware(row.absolute_expires_at))
            row.last_seen_at = now
            row.expires_at = expires
        return WebSession(User(user.name, user.role), row.csrf_token, expires)


def end_session(engine: Engine, token: str | None) -> None:
    if token:
        with session(engine) as s:
            s.execute(delete(WebSessionRow).where(WebSessionRow.token_hash == _token_hash(token)))


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and secrets.compare_digest(expected.encode(), str(given).encode())
