"""Admin accounts: who may sign in to the admin web (`gateway admins add|list|remove`).

Passwords are kept as argon2id hashes (argon2-cffi) with OWASP's parameters (19 MiB, 2 passes,
1 lane: about a tenth of a second a sign-in on a small host, which the admin web's sign-in
limits make enough); nothing else about them is stored. A hash made with other parameters is
made again at the next sign-in. SOC staff and GATEWAY_ADMIN_ADDRESSES are not accounts unless
added here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.directory.checks import DirectoryError, address
from gateway.storage.models import AdminAccount

MIN_PASSWORD = 12  # characters
MAX_PASSWORD = 1024  # argon2 takes any length; a form field should not
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@dataclass(frozen=True)
class Verified:
    """A sign-in that succeeded: whose, and the epoch its session carries."""

    email: str
    epoch: int


def checked_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise DirectoryError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD or "\x00" in password:
        raise DirectoryError(f"the password must have at most {MAX_PASSWORD} characters")
    return password


def add_admin(session: Session, email: str, password: str, now: datetime) -> bool:
    """An account with this password; an existing one gets the new password, and its sessions
    end. Returns True if the account is new."""
    email, hashed = address(email), _HASHER.hash(checked_password(password))
    account = session.scalar(select(AdminAccount).where(AdminAccount.email == email))
    if account is None:
        account = AdminAccount(email=email, password_hash=hashed, session_epoch=0, created_at=now)
        session.add(account)
        session.flush()
        return True
    account.password_hash, account.session_epoch = hashed, account.session_epoch + 1
    return False


def remove_admin(session: Session, email: str) -> None:
    account = session.scalar(select(AdminAccount).where(AdminAccount.email == address(email)))
    if account is None:
        raise DirectoryError(f"no admin account {email!r}")
    session.delete(account)


def admin_accounts(session: Session) -> list[AdminAccount]:
    return list(session.scalars(select(AdminAccount).order_by(AdminAccount.email)))


def verify_admin(session: Session, email: str, password: str, now: datetime) -> Verified | None:
    """The account if `password` is its own, else None. An unknown address costs the same
    argon2 verification as a known one, so that the time taken tells nothing."""
    wanted = email.strip().lower()
    account = session.scalar(select(AdminAccount).where(AdminAccount.email == wanted))
    if len(password) > MAX_PASSWORD:
        return None
    if account is None:
        _verify(_unknown_hash(), password)
        return None
    if not _verify(account.password_hash, password):
        return None
    if _HASHER.check_needs_rehash(account.password_hash):  # parameters raised since
        account.password_hash = _HASHER.hash(password)
    account.signed_in_at = now
    return Verified(account.email, account.session_epoch)


def session_epoch(session: Session, email: str) -> int | None:
    """The account's current epoch; None if there is no such account (any more)."""
    found: int | None = session.scalar(
        select(AdminAccount.session_epoch).where(AdminAccount.email == email)
    )
    return found


def end_sessions(session: Session, email: str) -> None:
    """Sign-out: every session cookie of this account issued until now opens nothing more."""
    account = session.scalar(select(AdminAccount).where(AdminAccount.email == email))
    if account is not None:
        account.session_epoch += 1


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _unknown_hash() -> str:
    return _HASHER.hash("no such account: the same work as a real one")
