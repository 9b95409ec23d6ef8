"""Service levels: the targets and their Deadlines, the clock, escalations, daily reviews."""
