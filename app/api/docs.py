"""Serve the Swagger UI assets for /api/v1/docs from the swagger-ui-bundle package.

Pages must not load anything from outside this machine, so the UI's JavaScript and CSS come
from the installed package instead of a CDN.
"""

from __future__ import annotations

from flask import Blueprint, send_from_directory
from swagger_ui_bundle import swagger_ui_path

ASSETS_URL = "/api/v1/docs/assets/"

docs_assets = Blueprint("api_docs_assets", __name__)


@docs_assets.get(ASSETS_URL + "<path:filename>")
def swagger_ui_asset(filename: str):
    return send_from_directory(swagger_ui_path, filename, max_age=86400)
