"""The stored records, in the service description's words (§1.3): customers, contacts, SRs, mail."""

from gateway.storage.models.base import Base, UTCDateTime
from gateway.storage.models.clocks import Deadline, Delivery, Escalation, EscalationStep
from gateway.storage.models.directory import (
    AdminAccount,
    Contact,
    Customer,
    DomainPolicy,
    Entitlement,
    Product,
    SocStaff,
)
from gateway.storage.models.history import RequestEvent
from gateway.storage.models.limits import NoticeLimit, SenderRate, SigninAttempt
from gateway.storage.models.mail import (
    AttachmentRow,
    ImapState,
    Message,
    ServiceRequest,
    StoredMail,
    ThreadRef,
)
from gateway.storage.models.securehands import (
    ScanEngagement,
    SecureHandsSession,
    SecureHandsSow,
    UnitEntry,
    UnitLot,
)
from gateway.storage.models.sus import (
    Bounce,
    Bulletin,
    BulletinRecipient,
    Subscription,
    SubscriptionChange,
    SubscriptionRequest,
    SubscriptionRequestRef,
)

__all__ = [
    "AdminAccount",
    "AttachmentRow",
    "Base",
    "Bounce",
    "Bulletin",
    "BulletinRecipient",
    "Contact",
    "Customer",
    "Deadline",
    "Delivery",
    "DomainPolicy",
    "Entitlement",
    "Escalation",
    "EscalationStep",
    "ImapState",
    "Message",
    "NoticeLimit",
    "Product",
    "RequestEvent",
    "ScanEngagement",
    "SecureHandsSession",
    "SecureHandsSow",
    "SenderRate",
    "ServiceRequest",
    "SigninAttempt",
    "SocStaff",
    "StoredMail",
    "Subscription",
    "SubscriptionChange",
    "SubscriptionRequest",
    "SubscriptionRequestRef",
    "ThreadRef",
    "UTCDateTime",
    "UnitEntry",
    "UnitLot",
]
