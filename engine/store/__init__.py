"""Store: the SQLite audit store with its hash chain."""
