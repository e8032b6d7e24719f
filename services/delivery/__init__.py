"""delivery: stock, allocation and backorders, shipments and dispatches, returns."""
