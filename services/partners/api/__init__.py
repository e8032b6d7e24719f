"""HTTP routes and schemas of the partners service."""
