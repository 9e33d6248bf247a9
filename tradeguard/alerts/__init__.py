"""Alerts: Slack, email, PagerDuty and webhooks; routed, folded, durable, never blocking."""
