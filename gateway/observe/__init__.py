"""How the gateway is doing: its metrics (Prometheus, `exposition.render_metrics`) and its log
lines (text or JSON, `logs`)."""
