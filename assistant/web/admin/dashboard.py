"""/admin: the dashboard section (being written)."""
