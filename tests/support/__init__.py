"""Real servers for the tests: an SMTP sink, a private Dovecot, the gateway itself."""
