"""Storage: SQLAlchemy tables, the repositories that implement ``oauth.ports``, migrations."""
