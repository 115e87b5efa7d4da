"""Composing a mailing: its fields and checks, previews, the one render function, recipients."""
