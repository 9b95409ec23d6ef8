"""Limits every process shares (R6.1, R1.8): a sender's SMTP rate, the last notice to an
address, the admin web's sign-in attempts. In the database, so that N listeners behind the MX
records (or N web processes behind the proxy) admit what one would."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.storage.models.base import Base


class SenderRate(Base):
    """One envelope sender's window: when it began and how many mails it admitted since."""

    __tablename__ = "sender_rates"
    sender: Mapped[str] = mapped_column(String(320), primary_key=True)
    window_start: Mapped[datetime]
    mails: Mapped[int] = mapped_column(Integer)
    __table_args__ = (Index("ix_sender_rates_window_start", "window_start"),)  # pruning


class NoticeLimit(Base):
    """When a notice of a template last went to an address (one per interval, R1.8)."""

    __tablename__ = "notice_limits"
    recipient: Mapped[str] = mapped_column(String(320), primary_key=True)
    template: Mapped[str] = mapped_column(String(64), primary_key=True)
    sent_at: Mapped[datetime]


class SigninAttempt(Base):
    """The admin web's sign-in attempts of one address or one client IP (`address:…`, `ip:…`)
    in the window that began at `window_start`. A table of its own: the SMTP rates' rows are
    pruned after a minute, a sign-in window lasts many."""

    __tablename__ = "signin_attempts"
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_start: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer)
    __table_args__ = (Index("ix_signin_attempts_window_start", "window_start"),)  # pruning
