"""The HTTP layer for people and OAuth clients: thin translations between HTTP and ``oauth``."""
