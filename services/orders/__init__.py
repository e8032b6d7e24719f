"""orders: catalog, tier price lists, order placement with channel control, order status."""
