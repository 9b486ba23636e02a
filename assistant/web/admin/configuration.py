"""/admin: the configuration section (being written)."""
