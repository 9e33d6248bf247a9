"""The HTTP API, the dashboard and Prometheus metrics (``tradeguard serve``)."""

from tradeguard.api.app import create_app

__all__ = ["create_app"]
