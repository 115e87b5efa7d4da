"""An OSDI v2 API in Action Network's dialect, so the field's tools (Parsons) sync unchanged."""
