"""SecureHands and assessment engagements (§3.11–§3.13, R5.1–R5.6): the unit ledger, SOWs,
sessions and their completion statements, acceptance and queries, forfeits, expiry, scans."""
