"""The operators' dashboard: health page, JSON API, Prometheus metrics and dramatiq-dashboard."""

from gabay.web.app import DashboardWeb, create_app

__all__ = ["DashboardWeb", "create_app"]
