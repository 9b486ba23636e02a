"""/admin: the oversight section (being written)."""
