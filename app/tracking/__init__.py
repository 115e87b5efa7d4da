"""Signed per-recipient links, opens, clicks and the machine/human distinction."""
