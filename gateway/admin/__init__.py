"""The admin web (`/admin/`): sign-in for admin accounts, the review queue, the quarantine, SRs,
subscriptions, bulletins, escalations, deliveries and the reports, server-rendered on the web
side's Starlette app. Each page calls the same use-cases as its command line."""

from gateway.admin.site import Site, mount
from gateway.admin.views import MailPreview, Renderings

__all__ = ["MailPreview", "Renderings", "Site", "mount"]
