"""The flask-smorest Blueprint every API area uses: strict JSON bodies, one error shape."""

from __future__ import annotations

import typing

import flask
import marshmallow
from flask_smorest import Blueprint
from sqlalchemy.exc import IntegrityError
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from app.api.errors import ApiError
from app.extensions import db
from app.security import parse_json


class StrictJsonParser(FlaskParser):
    """Refuse a request body that is not JSON where JSON is expected, and unknown query args.

    webargs silently treats a form or text body as "no JSON", so a PATCH sent with the wrong
    Content-Type would succeed and change nothing; a 415 tells the client what went wrong.
    """

    # A misspelt filter (`?stauts=bounced`) would otherwise list everything: refuse it with 422.
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": marshmallow.RAISE,
        "querystring": marshmallow.RAISE,
    }

    def _raw_load_json(self, req: flask.Request) -> typing.Any:
        if not is_json_request(req):
            if req.get_data(cache=True):
                raise ApiError(
                    415,
                    "unsupported_media_type",
                    "Send the request body as JSON with 'Content-Type: application/json'.",
                )
            return core.missing
        # webargs' own parse would let deep nesting through to a RecursionError (a 500).
        return parse_json(req.get_data(cache=True))


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = StrictJsonParser()


def get_or_404(model, object_id: int, label: str):
    """Load a row by primary key or answer 404 in the API error shape."""
    found = db.session.get(model, object_id)
    if found is None:
        raise ApiError(404, "not_found", f"No {label} with id {object_id}.")
    return found


def commit(conflict_message: str = "That clashes with a record saved at the same time.") -> None:
    """Commit, reporting a unique-constraint race as 409 instead of a 500."""
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise ApiError(409, "conflict", conflict_message) from exc
