"""Outbound, the transport stage: notices written as Deliveries, and the outbox."""
