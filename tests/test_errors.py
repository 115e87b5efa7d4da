"""One DomainError family: the API answers it in the error shape, pages with the friendly page."""

from __future__ import annotations

import pytest
from flask import Flask

from app import create_app
from app.campaigns.services import CampaignError
from app.errors import Conflict, DomainError, Invalid, NotFound
from app.mailings.compose.services import MailingError
from app.mailings.delivery import control
from app.mailings.delivery.launch import CampaignNotOpen, SendError
from app.supporters import services as supporter_services
from app.supporters.csvencoding import CsvFileError, EncodingError
from app.supporters.segments import SegmentDefinitionError
from app.tracking import revocations
from tests.factories import make_mailing


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


def assert_friendly_page(response, status: int, *texts: str) -> str:
    assert response.status_code == status
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "Traceback" not in page and "DomainError" not in page
    for text in texts:
        assert text in page, page
    return page


@pytest.mark.parametrize(
    ("error_class", "family", "status", "code"),
    [
        (supporter_services.InvalidSupporterData, Invalid, 422, "validation_error"),
        (SegmentDefinitionError, Invalid, 422, "validation_error"),
        (CsvFileError, Invalid, 422, "invalid_import"),
        (EncodingError, Invalid, 422, "invalid_import"),
        (CampaignError, Invalid, 422, "validation_error"),
        (MailingError, Invalid, 422, "validation_error"),
        (control.ControlError, Conflict, 409, "conflict"),
        (SendError, Conflict, 409, "conflict"),
        (CampaignNotOpen, Conflict, 409, "campaign_not_open"),
        (revocations.UnknownTarget, NotFound, 404, "not_found"),
    ],
)
def test_every_domain_error_is_a_domain_error_with_its_status_and_code(
    error_class, family, status, code
):
    error = error_class("Something is wrong.", {"field": ["Why."]})
    assert isinstance(error, family) and isinstance(error, DomainError)
    assert (error.status, error.code, error.message) == (status, code, "Something is wrong.")
    assert error.details == {"field": ["Why."]} and str(error) == "Something is wrong."


def test_domain_errors_that_were_value_errors_still_are():
    # CLI commands and services catch `ValueError` around these; that must keep working.
    for error_class in (CampaignError, MailingError, control.ControlError, SendError, CsvFileError):
        assert issubclass(error_class, ValueError)
    assert issubclass(revocations.UnknownTarget, LookupError)


def test_mailing_error_keeps_its_status_dependent_code():
    assert MailingError("Sent already.", status=409).code == "conflict"
    assert MailingError("x", status=409, code="not_draft").code == "not_draft"
    conflict = supporter_services.SupporterConflict("duplicate_email", "Taken.", {"email": "a"})
    assert (conflict.status, conflict.code, conflict.message) == (409, "duplicate_email", "Taken.")


# --- the API: one handler, the documented shape ---------------------------------------------


def test_supporters_domain_error_reaches_the_api_in_the_error_shape(client, api_token):
    response = client.post(
        "/api/v1/supporters",
        json={"email": "ana@example.org", "lists": ["No such list"]},
        headers=api_token("campaigner"),
    )
    error = assert_error(response, 422, "validation_error")
    assert error["message"] == "Unknown lists; create them first."
    assert error["details"] == {"lists": ["No list named 'No such list'."]}


def test_tracking_domain_error_reaches_the_api_in_the_error_shape(client, api_token):
    response = client.post(
        "/api/v1/mailings/987654/revoke-links", json={}, headers=api_token("campaigner")
    )
    error = assert_error(response, 404, "not_found")
    assert error == {"code": "not_found", "message": "No mailing with id 987654.", "details": {}}


def test_mailings_domain_error_reaches_the_api_in_the_error_shape(client, api_token):
    draft = make_mailing()
    response = client.post(f"/api/v1/mailings/{draft.id}/pause", headers=api_token("campaigner"))
    error = assert_error(response, 409, "conflict")
    assert error["message"] == "A draft mailing cannot be paused."


# --- pages: the friendly page, with the error's own status -----------------------------------


@pytest.fixture(scope="module")
def page_app(settings) -> Flask:
    """The app plus a staff-style page that calls real services and lets their errors escape."""
    app = create_app(settings, {"TESTING": True, "PROPAGATE_EXCEPTIONS": False})

    @app.get("/test-errors/supporter")
    def supporter_page():
        supporter_services.upsert_supporter({"email": "not an address"}, actor="test")
        return "unreachable"

    @app.get("/test-errors/revocation")
    def revocation_page():
        revocations.revoke_mailing_links(987654, actor="test")
        return "unreachable"

    return app


def test_supporters_domain_error_reaches_a_page_as_the_friendly_page(page_app):
    response = page_app.test_client().get("/test-errors/supporter")
    assert_friendly_page(response, 422, "Please check what you entered", "Invalid email address.")


def test_tracking_domain_error_reaches_a_page_as_the_friendly_page(page_app):
    response = page_app.test_client().get("/test-errors/revocation")
    assert_friendly_page(response, 404, "Not found", "No mailing with id 987654.", "Error 404")


def test_campaigns_domain_error_reaches_the_supporters_problem_page(client):
    # ConfirmProblem is raised by the confirmations service; the campaign pages' one handler
    # for DomainError renders the supporters' problem page with its status.
    response = client.get("/confirm/not-a-token")
    assert_friendly_page(response, 400, "This link is not valid", "If you need help")
