"""Rate limiting per client address and per signer (docs/configuration.md)."""
