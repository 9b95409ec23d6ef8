"""Service Requests, the prepare stage: open and update SRs, the SOC side, entitlements."""
