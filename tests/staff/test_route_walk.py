"""Walk every staff route in the URL map: sign-in, roles and CSRF hold on each one.

New pages are covered without editing this file: the walk reads the app's own URL map, and a
staff view that declares no role fails here (the guard also refuses it at run time).
"""

from __future__ import annotations

import pytest
from flask import url_for

from app.auth.models import Role
from app.auth.services import ROLE_RANK
from app.staff.access import is_public, view_role

SAFE = {"GET"}
IGNORED = {"HEAD", "OPTIONS"}


def staff_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("staff_")]


def url_of(app, rule) -> str:
    values = {}
    for name in rule.arguments:
        converter = rule._converters[name]  # noqa: SLF001 - how the rule parses that part
        kind = type(converter).__name__
        if kind.endswith(("IntegerConverter", "BigintConverter")):
            values[name] = 1
        elif kind == "AnyConverter":
            values[name] = sorted(converter.items)[0]
        else:
            values[name] = "x"
    with app.test_request_context():
        return url_for(rule.endpoint, **values)


def routes(app):
    """(endpoint, method, url, role or None for public) for every staff route and method."""
    found = []
    for rule in staff_rules(app):
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - IGNORED):
            found.append(
                (
                    rule.endpoint,
                    method,
                    url_of(app, rule),
                    None if is_public(view) else view_role(view),
                )
            )
    return found


def test_there_are_staff_routes_to_walk(app):
    endpoints = {endpoint for endpoint, *_ in routes(app)}
    assert {"staff_dashboard.index", "staff_account.login", "staff_admin.index"} <= endpoints


def test_every_staff_view_declares_who_may_use_it(app):
    undeclared = [
        rule.endpoint
        for rule in staff_rules(app)
        if not is_public(app.view_functions[rule.endpoint])
        and view_role(app.view_functions[rule.endpoint]) is None
    ]
    assert undeclared == []


def test_anonymous_users_are_sent_to_sign_in_everywhere_but_public_pages(app, anonymous_client):
    for endpoint, method, url, role in routes(app):
        if role is None:
            continue
        data = {"csrf_token": _anonymous_csrf(anonymous_client)} if method not in SAFE else None
        response = anonymous_client.open(url, method=method, data=data)
        assert response.status_code == 302, (endpoint, method, response.status_code)
        assert response.headers["Location"].startswith("/staff/login"), (endpoint, method)


def _anonymous_csrf(client) -> str:
    from tests.staff.conftest import csrf_from

    return csrf_from(client.get("/staff/login").get_data(as_text=True))


@pytest.mark.parametrize("role", [Role.ANALYST, Role.CAMPAIGNER])
def test_lower_roles_are_refused_with_403(app, staff_client, role):
    client = staff_client(role)
    checked = 0
    for endpoint, method, url, required in routes(app):
        if required is None or ROLE_RANK[role] >= ROLE_RANK[required]:
            continue
        response = client.open(
            url,
            method=method,
            data={"csrf_token": client.csrf_token} if method not in SAFE else None,
        )
        assert response.status_code == 403, (endpoint, method, response.status_code)
        checked += 1
    assert checked > 0  # each of these roles is below some page


@pytest.mark.parametrize("role", list(Role))
def test_state_changing_routes_refuse_a_missing_or_wrong_csrf_token(app, staff_client, role):
    client = staff_client(role)
    unsafe = [(e, m, u) for e, m, u, _ in routes(app) if m not in SAFE]
    assert unsafe
    for endpoint, method, url in unsafe:
        for data in ({}, {"csrf_token": "forged"}):
            response = client.open(url, method=method, data=data)
            assert response.status_code == 400, (endpoint, method, data, response.status_code)


def test_a_view_without_a_role_is_refused_even_signed_in(app, staff_client):
    """Fail closed: a staff view that forgot its decorator answers 403, not the page."""
    from app.staff.access import staff_blueprint

    blueprint = staff_blueprint("staff_walk_probe", __name__, url_prefix="/staff/walk-probe")
    blueprint.add_url_rule("/", "open_by_mistake", lambda: "secret")
    probe_app = app.__class__(app.import_name)
    probe_app.config.update(app.config)
    from app.staff import register_staff

    register_staff(probe_app)
    probe_app.register_blueprint(blueprint)
    # the same user store: sign in on the real app, then reuse the cookie on the probe app
    client = staff_client(Role.ADMIN)
    probe = probe_app.test_client()
    probe.set_cookie("session", client.get_cookie("session").value)
    assert probe.get("/staff/walk-probe/").status_code == 403
