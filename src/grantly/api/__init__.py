"""The resource API: what tokens open. Bearer (RFC 6750) authentication lives here."""
