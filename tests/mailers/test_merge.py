import pytest
from jinja2.sandbox import SecurityError

from mailers.merge import (
    PER_RECIPIENT_URLS,
    STANDARD_FIELDS,
    allowed_fields,
    html_env,
    text_env,
    validate_template,
)

ALLOWED = allowed_fields({"town"})


def test_valid_template_has_no_errors():
    source = (
        'Dear {{ first_name | default("Friend") | title }} in {{ town }},\n'
        "{% if postcode %}{{ postcode | upper }}{% endif %}\n"
        '<a href="{{ action_url }}">Act</a> {{ organisation_name }}'
    )
    assert validate_template(source, ALLOWED) == []


def test_constants_cover_the_documented_fields():
    assert {"first_name", "last_name", "email", "postcode", "country", "language"} == set(
        STANDARD_FIELDS
    )
    assert {"action_url", "unsubscribe_url", "preferences_url", "view_in_browser_url"} == set(
        PER_RECIPIENT_URLS
    )


def test_syntax_error_reports_its_line():
    errors = validate_template("Hello\n{{ first_name \n", ALLOWED)
    assert len(errors) == 1
    assert errors[0].startswith("line ")


def test_unknown_field_is_named_with_its_line():
    errors = validate_template("Hi\n\n{{ shoe_size }}", ALLOWED)
    assert errors == ["line 3: unknown merge field 'shoe_size'"]


def test_tracking_urls_are_not_for_staff():
    assert validate_template("{{ click_url }}", ALLOWED) == [
        "line 1: unknown merge field 'click_url'"
    ]


def test_loop_variables_are_not_unknown_fields():
    assert validate_template("{% for w in town %}{{ w }}{% endfor %}", ALLOWED) == []
    assert validate_template("{% set greeting = 'Hi' %}{{ greeting }}", ALLOWED) == []


@pytest.mark.parametrize(
    "source, fragment",
    [
        ('{% include "x.html" %}', "{% include %}"),
        ('{% import "x.html" as x %}', "{% import %}"),
        ('{% from "x.html" import y %}', "import %}"),
        ('{% extends "base.html" %}', "{% extends %}"),
        ("{{ first_name.__class__ }}", "attribute access"),
        ("{{ first_name['x'] }}", "item access"),
        ("{{ range(10) }}", "calling functions"),
        ("{% macro m() %}x{% endmacro %}", "{% macro %}"),
    ],
)
def test_disallowed_constructs(source, fragment):
    errors = validate_template(source, ALLOWED)
    assert any(fragment in e for e in errors), errors


def test_unknown_filter_is_an_error():
    errors = validate_template("{{ first_name | attr('x') }}", ALLOWED)
    assert errors == ["line 1: No filter named 'attr'."]


def test_sandbox_still_guards_rendering():
    with pytest.raises(SecurityError):
        text_env.from_string("{{ x.__class__.__mro__[1].__subclasses__() }}").render(x="")


def test_html_env_escapes_and_text_env_does_not():
    assert html_env.from_string("{{ v }}").render(v="<b>&") == "&lt;b&gt;&amp;"
    assert text_env.from_string("{{ v }}").render(v="<b>&") == "<b>&"


def test_default_applies_to_missing_fields():
    template = text_env.from_string('{{ first_name | default("Friend") }}')
    assert template.render() == "Friend"
    assert template.render(first_name="Ana") == "Ana"
