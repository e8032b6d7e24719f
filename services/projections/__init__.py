"""projections: read models across services: timelines, partner 360, aging, sales, audit."""
