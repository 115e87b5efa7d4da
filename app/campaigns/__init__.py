"""Campaigns: urgent actions supporters take from their inbox or the public page."""
