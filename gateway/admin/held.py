"""The review queue and the quarantine (R1.8, R6.3): what intake kept without opening anything,
and what an admin does with it, as `gateway review | quarantine` does (gateway/intake/held.py):
release, dismiss, retry; and register a held mail's sender as a contact (`contacts add`)."""

from __future__ import annotations

from gateway import directory
from gateway.admin.views import Done, Result, Shown, Spec, Visit, action, missing, page
from gateway.directory import listings as directory_listings
from gateway.intake import listings
from gateway.intake.held import dismiss_held, release_held, retry_quarantined
from gateway.intake.receipts import Receipt

STATUSES = ("review", "bounce", "dismissed")  # what the review queue's tabs show


def review_list(visit: Visit) -> Shown:
    status = visit.query.get("status", "review")
    status = status if status in STATUSES else "review"
    with visit.rt.sessions.begin() as session:
        rows = listings.held_mails(session, status=status)
    return Shown("review_list.html.j2", {"rows": rows, "status": status, "statuses": STATUSES})


def review_show(visit: Visit) -> Result:
    stored_id = visit.path["stored_id"]
    with visit.rt.sessions.begin() as session:
        shown = listings.held_mail(session, stored_id)
        customers = [c["name"] for c in directory_listings.customers(session)]
        registered = {c.email for c in directory.contacts(session)}
    if shown is None or shown["status"] == "quarantined":
        return missing(f"held mail {stored_id}")
    values = {
        "mail": shown,
        "customers": customers,
        "registered": (shown["from"] or "").lower() in registered,
        "languages": directory.LANGUAGES,
        "roles": directory.CONTACT_ROLES,
    }
    return Shown("review_show.html.j2", values)


def release(visit: Visit) -> Done:
    stored_id = visit.path["stored_id"]
    receipt = release_held(stored_id, visit.rt)
    return _outcome(receipt, f"/review/{stored_id}")


def dismiss(visit: Visit) -> Done:
    stored_id = visit.path["stored_id"]
    dismiss_held(stored_id, visit.rt)
    return Done(f"/review/{stored_id}", f"Mail {stored_id} dismissed: kept, and let be.")


def register(visit: Visit) -> Done:
    """The held mail's sender becomes a contact of the customer chosen (§5.1.1: the SOC is told
    of starters); releasing the mail then opens its SR."""
    stored_id, form, rt = visit.path["stored_id"], visit.form, visit.rt
    with rt.sessions.begin() as session:
        shown = listings.held_mail(session, stored_id)
        if shown is None or not shown["from"]:
            raise directory.DirectoryError(f"no held mail {stored_id} with a sender")
        owner = directory.require_customer(session, form.get("customer", ""))
        contact, created = directory.add_contact(
            session,
            owner,
            shown["from"],
            form.get("name", ""),
            rt.now(),
            language=form.get("language") or "en",
            role=form.get("role") or "technical_contact",
        )
        said = f"{contact.email} {'added' if created else 'updated'} as a contact of {owner.name}"
    return Done(f"/review/{stored_id}", f"{said}. Release the mail to open its SR.")


def quarantine_list(visit: Visit) -> Shown:
    with visit.rt.sessions.begin() as session:
        rows = listings.held_mails(session, status="quarantined")
    return Shown("quarantine_list.html.j2", {"rows": rows})


def quarantine_show(visit: Visit) -> Result:
    stored_id = visit.path["stored_id"]
    with visit.rt.sessions.begin() as session:
        shown = listings.stored_mail(session, stored_id)
    if shown is None:
        return missing(f"stored mail {stored_id}")
    return Shown("quarantine_show.html.j2", {"mail": shown})


def retry(visit: Visit) -> Done:
    stored_id = visit.path["stored_id"]
    receipt = retry_quarantined(stored_id, visit.rt)
    return _outcome(receipt, f"/quarantine/{stored_id}")


def _outcome(receipt: Receipt, back: str) -> Done:
    """Where a mail run through intake again went: its SR, or back with the reason."""
    if receipt.sr_id:
        said = f"Mail {receipt.stored_id}: {receipt.outcome} {receipt.sr_id}."
        return Done(f"/requests/{receipt.sr_id}", said)
    if receipt.held or receipt.outcome == "quarantined":
        said = f"Mail {receipt.stored_id} is still held: {receipt.reason}"
        return Done(back, said, error=True)
    return Done(back, f"Mail {receipt.stored_id}: {receipt.outcome}. {receipt.reason}".strip())


MAIL = "/review/{stored_id:int}"
ROUTES: tuple[Spec, ...] = (
    page("/review", review_list),
    page(MAIL, review_show),
    action(f"{MAIL}/release", release, "/review/{stored_id}", "review release"),
    action(f"{MAIL}/dismiss", dismiss, "/review/{stored_id}", "review dismiss"),
    action(f"{MAIL}/contact", register, "/review/{stored_id}", "contacts add"),
    page("/quarantine", quarantine_list),
    page("/quarantine/{stored_id:int}", quarantine_show),
    action(
        "/quarantine/{stored_id:int}/retry", retry, "/quarantine/{stored_id}", "quarantine retry"
    ),
)
