"""The OSDI v2 API at /api/osdi/v1, in Action Network's dialect, so its clients work unchanged.

A plain Flask blueprint answering HAL+JSON (`application/hal+json`). Every request needs a
Clarion API token in the `OSDI-API-Token` header: `analyst` reads, writes need `campaigner`.
Errors are Action Network's {"error": "…"}. What each resource holds: app/osdi/resources.py.
"""

from __future__ import annotations

import json
from functools import wraps

from flask import Blueprint, Response, g, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from app.auth.models import Role
from app.auth.services import TokenRefused, authorize_token
from app.errors import DomainError, Invalid
from app.extensions import db
from app.mailings.models import Mailing
from app.osdi import people, resources, services
from app.osdi.errors import OsdiError
from app.osdi.filters import parse_filter
from app.osdi.paging import page_request, people_page
from app.security import parse_json
from app.supporters.models import MailingList, Supporter, Tag

PREFIX = resources.PREFIX
osdi = Blueprint("osdi", __name__, url_prefix=PREFIX)
HAL = "application/hal+json"
TOKEN_HEADER = "OSDI-API-Token"


# Markup characters escaped, as JSON allows: a body a browser is tricked into reading as HTML
# holds no tag. Supporters' names and custom fields are anyone's text.
HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def hal(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body).translate(HTML_SAFE), status=status, mimetype=HAL)


@osdi.errorhandler(OsdiError)
def _osdi_error(exc: OsdiError):
    return hal({"error": exc.message}, exc.status)


def is_osdi_request() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def http_error(exc: HTTPException) -> Response:
    """A routing error under the OSDI prefix (no such path, wrong method) in OSDI's shape.

    Called by create_app's handler: a blueprint's own handlers never see a URL that matched
    none of its routes.
    """
    response = hal({"error": exc.description or exc.name}, exc.code or 500)
    if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


@osdi.errorhandler(DomainError)
def _domain_error(exc: DomainError):
    # The supporters' services refuse in Clarion's terms; OSDI clients get one sentence.
    details = "; ".join(
        f"{field}: {' '.join(map(str, problem)) if isinstance(problem, list) else problem}"
        for field, problem in (exc.details or {}).items()
    )
    status = 400 if isinstance(exc, Invalid) else exc.status
    return hal({"error": f"{exc.message} {details}".strip()}, status)


def requires(role: Role):
    """Run the view only for an active token in OSDI-API-Token whose role is at least `role`."""

    def decorator(view):
        @wraps(view)
        def checked(*args, **kwargs):
            secret = request.headers.get(TOKEN_HEADER, "").strip()
            if not secret:
                raise OsdiError(401, f"Send a Clarion API token in the {TOKEN_HEADER} header.")
            try:
                g.osdi_token = authorize_token(secret, role)
            except TokenRefused as exc:
                raise OsdiError(exc.status, exc.message) from exc
            return view(*args, **kwargs)

        return checked

    return decorator


def actor() -> str:
    return f"token:{g.osdi_token.name}"


def body():
    """The request's JSON body (any JSON content type, as clients differ), or a 400."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise OsdiError(400, "Send a JSON body.")
    try:
        return parse_json(raw)
    except json.JSONDecodeError as exc:
        raise OsdiError(400, f"The request body is not valid JSON ({exc.msg}).") from exc


def commit() -> None:
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise OsdiError(409, "That clashes with a record saved at the same time; retry.") from exc


def page_of(name: str, found: tuple[list[dict], int]) -> Response:
    items, total = found
    wanted = page_request(request.args)
    return hal(
        resources.collection(name, items, page=wanted.page, per_page=wanted.per_page, total=total)
    )


@osdi.get("/")
@requires(Role.ANALYST)
def entry_point():
    collections = ("people", "tags", "lists", "advocacy_campaigns", "messages")
    return hal(
        {
            "motd": "Clarion's OSDI API (Action Network dialect)",
            "vendor_name": "Clarion",
            "product_name": "Clarion",
            "osdi_version": "2.0",
            "max_pagesize": 25,
            "_links": {
                "self": {"href": resources.url()},
                **{f"osdi:{name}": {"href": resources.url(name)} for name in collections},
                "osdi:person_signup_helper": {"href": resources.url("people")},
                "curies": resources.CURIES,
            },
        }
    )


# --- people ----------------------------------------------------------------------------------


@osdi.get("/people")
@requires(Role.ANALYST)
def list_people():
    wanted = page_request(request.args)
    conditions = people.person_conditions(parse_filter(request.args.get("filter")))
    supporters, total = people_page(wanted, conditions)
    return page_of("people", ([resources.person(s) for s in supporters], total))


@osdi.post("/people")
@requires(Role.CAMPAIGNER)
def sign_up_person():
    supporter, created = people.sign_up(body(), actor=actor())
    commit()
    return hal(resources.person(supporter), 201 if created else 200)


@osdi.get("/people/<int:person_id>")
@requires(Role.ANALYST)
def get_person(person_id):
    return hal(resources.person(services.existing(Supporter, person_id, "person")))


@osdi.put("/people/<int:person_id>")
@requires(Role.CAMPAIGNER)
def update_person(person_id):
    supporter = services.existing(Supporter, person_id, "person")
    people.update_person(supporter, body(), actor=actor())
    commit()
    return hal(resources.person(supporter))


@osdi.get("/people/<int:person_id>/taggings")
@requires(Role.ANALYST)
def person_taggings(person_id):
    supporter = services.existing(Supporter, person_id, "person")
    return page_of("taggings", services.person_taggings_page(supporter, page_request(request.args)))


@osdi.get("/people/<int:person_id>/outreaches")
@requires(Role.ANALYST)
def person_outreaches(person_id):
    supporter = services.existing(Supporter, person_id, "person")
    wanted = page_request(request.args)
    return page_of("outreaches", services.person_outreaches_page(supporter, wanted))


@osdi.get("/people/<int:person_id>/outreaches/<int:outreach_id>")
@requires(Role.ANALYST)
def person_outreach(person_id, outreach_id):
    return hal(services.one_outreach(outreach_id, supporter_id=person_id))


# --- tags and taggings -----------------------------------------------------------------------


@osdi.get("/tags")
@requires(Role.ANALYST)
def list_tags():
    return page_of("tags", services.tags_page(page_request(request.args)))


@osdi.post("/tags")
@requires(Role.CAMPAIGNER)
def create_tag():
    tag, created = services.find_or_create_tag(body())
    commit()
    return hal(resources.tag(tag), 201 if created else 200)


@osdi.get("/tags/<int:tag_id>")
@requires(Role.ANALYST)
def get_tag(tag_id):
    return hal(resources.tag(services.existing(Tag, tag_id, "tag")))


@osdi.get("/tags/<int:tag_id>/taggings")
@requires(Role.ANALYST)
def list_taggings(tag_id):
    tag = services.existing(Tag, tag_id, "tag")
    return page_of("taggings", services.taggings_page(tag, page_request(request.args)))


@osdi.post("/tags/<int:tag_id>/taggings")
@requires(Role.CAMPAIGNER)
def create_tagging(tag_id):
    tag = services.existing(Tag, tag_id, "tag")
    supporter = services.tag_person(tag, body())
    commit()
    return hal(resources.tagging(tag.id, supporter.id))


@osdi.get("/tags/<int:tag_id>/taggings/<tagging_id>")
@requires(Role.ANALYST)
def get_tagging(tag_id, tagging_id):
    tag = services.existing(Tag, tag_id, "tag")
    supporter = services.tagged_person(tag, tagging_id)
    return hal(resources.tagging(tag.id, supporter.id))


@osdi.delete("/tags/<int:tag_id>/taggings/<tagging_id>")
@requires(Role.CAMPAIGNER)
def delete_tagging(tag_id, tagging_id):
    tag = services.existing(Tag, tag_id, "tag")
    supporter = services.tagged_person(tag, tagging_id)
    people.remove_tags(supporter, [tag.name])
    commit()
    return hal({"notice": "This tagging was successfully deleted."})


# --- lists and items -------------------------------------------------------------------------


@osdi.get("/lists")
@requires(Role.ANALYST)
def list_lists():
    return page_of("lists", services.lists_page(page_request(request.args)))


@osdi.get("/lists/<int:list_id>")
@requires(Role.ANALYST)
def get_list(list_id):
    return hal(services.one_list(services.existing(MailingList, list_id, "list")))


@osdi.get("/lists/<int:list_id>/items")
@requires(Role.ANALYST)
def list_items(list_id):
    mailing_list = services.existing(MailingList, list_id, "list")
    return page_of("items", services.items_page(mailing_list, page_request(request.args)))


@osdi.get("/lists/<int:list_id>/items/<int:item_id>")
@requires(Role.ANALYST)
def get_item(list_id, item_id):
    mailing_list = services.existing(MailingList, list_id, "list")
    return hal(services.list_item(mailing_list, item_id))


# --- advocacy campaigns and outreaches -------------------------------------------------------


@osdi.get("/advocacy_campaigns")
@requires(Role.ANALYST)
def list_campaigns():
    return page_of("advocacy_campaigns", services.campaigns_page(page_request(request.args)))


@osdi.get("/advocacy_campaigns/<int:campaign_id>")
@requires(Role.ANALYST)
def get_campaign(campaign_id):
    return hal(services.one_campaign(services.letter_campaign(campaign_id)))


@osdi.get("/advocacy_campaigns/<int:campaign_id>/outreaches")
@requires(Role.ANALYST)
def campaign_outreaches(campaign_id):
    campaign = services.letter_campaign(campaign_id)
    wanted = page_request(request.args)
    return page_of("outreaches", services.campaign_outreaches_page(campaign, wanted))


@osdi.get("/advocacy_campaigns/<int:campaign_id>/outreaches/<int:outreach_id>")
@requires(Role.ANALYST)
def campaign_outreach(campaign_id, outreach_id):
    services.letter_campaign(campaign_id)
    return hal(services.one_outreach(outreach_id, campaign_id=campaign_id))


# --- messages --------------------------------------------------------------------------------


@osdi.get("/messages")
@requires(Role.ANALYST)
def list_messages():
    return page_of("messages", services.messages_page(page_request(request.args)))


@osdi.get("/messages/<int:message_id>")
@requires(Role.ANALYST)
def get_message(message_id):
    return hal(services.one_message(services.existing(Mailing, message_id, "message")))
