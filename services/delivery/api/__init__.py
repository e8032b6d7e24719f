"""Delivery's HTTP surface: stock, shipments and returns."""
