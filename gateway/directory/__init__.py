"""The directory of who may write (§5.1.1): customers, contacts, products, SOC staff, domains.

Its use-cases are named here, so that the command line, the tests and the demo read
`directory.add_contact(...)` whatever module of the room holds them.
"""

from gateway.directory.admins import (
    Verified,
    add_admin,
    admin_accounts,
    checked_password,
    end_sessions,
    remove_admin,
    session_epoch,
    verify_admin,
)
from gateway.directory.checks import DirectoryError, address
from gateway.directory.contacts import (
    CONTACT_ROLES,
    LANGUAGES,
    ImportReport,
    add_contact,
    add_customer,
    contacts,
    customer_named,
    import_contacts,
    remove_contact,
    remove_customer,
    require_customer,
)
from gateway.directory.domains import (
    POLICIES,
    POLICY_NAMES,
    domain_policies,
    remove_domain_policy,
    set_domain_policy,
)
from gateway.directory.products import add_entitlement, entitlements, remove_entitlement
from gateway.directory.staff import STAFF_ROLES, add_staff, remove_staff, staff

__all__ = [
    "CONTACT_ROLES",
    "LANGUAGES",
    "POLICIES",
    "POLICY_NAMES",
    "STAFF_ROLES",
    "DirectoryError",
    "ImportReport",
    "Verified",
    "add_admin",
    "add_contact",
    "add_customer",
    "add_entitlement",
    "add_staff",
    "address",
    "admin_accounts",
    "checked_password",
    "contacts",
    "customer_named",
    "domain_policies",
    "end_sessions",
    "entitlements",
    "import_contacts",
    "remove_admin",
    "remove_contact",
    "remove_customer",
    "remove_domain_policy",
    "remove_entitlement",
    "remove_staff",
    "require_customer",
    "session_epoch",
    "set_domain_policy",
    "staff",
    "verify_admin",
]
