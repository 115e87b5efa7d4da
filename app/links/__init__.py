"""Signed per-recipient tokens and the URLs built from them: the layer mailings, tracking and campaigns share."""
