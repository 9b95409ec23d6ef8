"""How the gateway is doing: its metrics (Prometheus) and its log lines (text or JSON)."""

from gateway.observe.exposition import render_metrics

__all__ = ["render_metrics"]
