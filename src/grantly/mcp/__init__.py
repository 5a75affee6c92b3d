"""Grantly's API as an MCP server (``server.py``), for AI agents that speak the Model Context
Protocol; off with ``GRANTLY_MCP=false``."""
