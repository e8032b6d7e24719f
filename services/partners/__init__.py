"""partners: partner records, agreements, lifecycle, and API keys (DOMAIN.md: Partners)."""
