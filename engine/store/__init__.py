"""Store: the audit store (an SQLite file or a PostgreSQL schema) with its hash chain."""
