"""Commerce: tracked links, identity, orders, attribution, ledger, statements, customer value."""
