"""The stored records, in the service description's words (§1.3): customers, contacts, SRs, mail."""

from gateway.storage.models.base import Base, UTCDateTime
from gateway.storage.models.clocks import Deadline, Delivery, Escalation, EscalationStep
from gateway.storage.models.directory import (
    Contact,
    Customer,
    DomainPolicy,
    Entitlement,
    Product,
    SocStaff,
)
from gateway.storage.models.history import RequestEvent
from gateway.storage.models.mail import (
    AttachmentRow,
    ImapState,
    Message,
    ServiceRequest,
    StoredMail,
    ThreadRef,
)

__all__ = [
    "AttachmentRow",
    "Base",
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
    "Product",
    "RequestEvent",
    "ServiceRequest",
    "SocStaff",
    "StoredMail",
    "ThreadRef",
    "UTCDateTime",
]
