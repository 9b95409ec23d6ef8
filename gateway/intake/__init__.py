"""Intake, the decide stage: receive a mail, read it, check its sender, decide what it is."""
