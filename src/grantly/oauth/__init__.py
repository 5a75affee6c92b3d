"""The OAuth 2 protocol core.

Pure and typed: this package imports neither a web framework nor a database library. It takes
frozen dataclasses (requests, clients, a clock), talks to storage through the Protocols in
``ports``, and returns results or raises ``OAuthError``.
"""
