"""Grantly: an OAuth 2 authorization server for multi-tenant SaaS APIs."""

__version__ = "0.1.0"
