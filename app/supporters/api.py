"""Supporters, lists, tags, segments and imports under /api/v1."""

blueprints: list = []
