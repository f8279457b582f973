"""Assets: DDO models, on-chain metadata documents, DID resolution and indexing."""
