"""Mailings API (compose, preview, test send, send, pause, resume, cancel, status)."""

blueprints: list = []
