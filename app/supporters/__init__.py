"""Supporters, their consent history, lists, tags and saved segments."""
