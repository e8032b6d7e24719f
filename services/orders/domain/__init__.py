"""The orders domain: catalog and tier prices, the partner copy, orders and their status. No I/O."""
