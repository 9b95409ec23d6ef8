"""Storage: the engine and its transactions, the SQLite helpers, the tables, the migrations."""
