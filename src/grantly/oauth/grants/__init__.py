"""Grant types of the token endpoint, one module each (RFC 6749 §4.1.3, §6)."""
