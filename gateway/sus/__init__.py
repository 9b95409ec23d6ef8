"""The Support Update Service (§3.8, R4.1–R4.4): subscriptions, requests by mail, bulletins and
their fan-out, bounces. English only (R1.11)."""
