"""Property-based tests of every API operation against its own OpenAPI document.

Schemathesis generates requests from /api/v1/openapi.json and checks each answer: never a 5xx,
a documented status code and content type, and a body matching the documented schema. It runs
on the per-worker test database, each operation inside its own rolled-back transaction.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from app import create_app
from app.config import Settings
from app.extensions import db
from app.supporters.models import MailingList
from tests.factories import make_list, make_mailing, make_supporters

# Every built-in check except one: positive_data_acceptance expects any schema-valid request
# to succeed, but the API rightly answers 422 to requests that break rules no JSON Schema
# states (an unknown list name, an email that does not deliver, NUL in text, a deadline in
# the past). Everything else runs: no 5xx; documented status codes, content types, headers
# and bodies; invalid data refused; auth not ignored; deleted resources really gone. A body
# past the size limit is refused with 413 before it is read, which is a rejection too.
REJECTIONS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {"expected-statuses": REJECTIONS},
        }
    }
)


# The document is the same for every app, so it is read from one built with default settings
# when the module loads (schemathesis' fixture-based loader does not work on pytest 9); every
# request goes to the test app on the per-worker database.
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json", create_app(Settings.from_env({}), {"TESTING": True}), config=CONFIG
)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_operation_conforms_to_its_schema(case, app, api_token):
    case.call_and_validate(app=app, headers=api_token("admin"))


# Generated ids rarely name a row, so the answers for real rows are checked here, against the
# same document and checks.
@pytest.mark.parametrize("part", ["json", "html", "text"])
def test_preview_of_a_real_mailing_conforms_in_every_format(app, api_token, part):
    mailing = make_mailing(make_list())
    make_supporters(
        1, mailing_list=db.session.get(MailingList, mailing.audience["include_lists"][0])
    )
    db.session.commit()
    case = schema["/api/v1/mailings/{mailing_id}/preview"]["GET"].Case(
        path_parameters={"mailing_id": mailing.id}, query={"format": part}
    )
    response = case.call_and_validate(app=app, headers=api_token("analyst"))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/supporters/{supporter_id}", "supporter_id"),
        ("/api/v1/supporters/{supporter_id}/history", "supporter_id"),
        ("/api/v1/supporters/{supporter_id}/export", "supporter_id"),
    ],
)
def test_reads_of_a_real_supporter_conform(app, api_token, path, parameter):
    (supporter_id,) = make_supporters(1, mailing_list=make_list())
    db.session.commit()
    case = schema[path]["GET"].Case(path_parameters={parameter: supporter_id})
    response = case.call_and_validate(app=app, headers=api_token("admin"))
    assert response.status_code == 200
