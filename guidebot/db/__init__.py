"""Storage: SQLModel tables, the engine and the query functions in repo/."""
