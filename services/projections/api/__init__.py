"""HTTP: views, audit and the finance dashboard."""
