"""The edges: where mail comes in (the SMTP listener, the IMAP poller)."""
