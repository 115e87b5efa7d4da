"""The JSON API under /api/v1: one error shape, bearer-token auth, OpenAPI document."""
