"""Reports (§3.5.5, §3.7, §3.10): service-level attainment, SR history, escalation analysis."""
