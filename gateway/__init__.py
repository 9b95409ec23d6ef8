"""The gateway: storage, decisions, the SMTP and IMAP edges, the outbox and the clock."""
