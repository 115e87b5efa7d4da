"""Pin the merge sandbox: what staff templates may not do, and what they still can.

mailers/merge.py means: variables, filters (from a short list), conditionals, loops and
`{% set %}` are allowed; including, importing, extending, macros, calls, attribute and item
access are refused by `validate_template`, and the environments have no globals at all, so
Jinja's range/lipsum/cycler/joiner/namespace/dict are not there even if a template slipped by.

These tests need no database (the mutation runner runs them with --noconftest).
"""

from __future__ import annotations

import pytest
from jinja2 import UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from mailers.merge import (
    FREEZE_FIELDS,
    PER_RECIPIENT_URLS,
    STANDARD_FIELDS,
    TRACKING_URLS,
    allowed_fields,
    html_env,
    text_env,
    validate_template,
)

ALLOWED = allowed_fields({"town"})
ENVS = pytest.mark.parametrize("env", [text_env, html_env], ids=["text", "html"])

CALL = "line 1: calling functions is not allowed in mailings; use filters"
GETATTR = "line 1: attribute access (x.y) is not allowed in mailings"
GETITEM = "line 1: item access (x[y]) is not allowed in mailings"

# Every refused construct with the exact errors a staff member sees.
REFUSED = {
    '{% include "footer.html" %}': ["line 1: {% include %} is not allowed in mailings"],
    '{% import "macros.html" as m %}': ["line 1: {% import %} is not allowed in mailings"],
    '{% from "macros.html" import button %}': [
        "line 1: {% from … import %} is not allowed in mailings"
    ],
    '{% extends "base.html" %}': ["line 1: {% extends %} is not allowed in mailings"],
    "{% macro m() %}x{% endmacro %}": ["line 1: {% macro %} is not allowed in mailings"],
    "{% call town() %}x{% endcall %}": [CALL, "line 1: {% call %} is not allowed in mailings"],
    "{{ first_name.__class__ }}": [GETATTR],
    "{{ first_name.__class__.__mro__ }}": [GETATTR],  # one error per line and kind
    # `loop.index` is attribute access too: staff loops cannot number their items.
    "{% for w in town %}{{ loop.index }}{% endfor %}": [GETATTR],
    "{{ town.upper() }}": [GETATTR, CALL],
    "{{ first_name['__class__'] }}": [GETITEM],
    "{{ town[0] }}": [GETITEM],
    "{{ range(10) }}": [CALL, "line 1: unknown merge field 'range'"],
    "{{ lipsum(1) }}": [CALL, "line 1: unknown merge field 'lipsum'"],
    "{{ cycler('a', 'b') }}": [CALL, "line 1: unknown merge field 'cycler'"],
    "{{ joiner(',') }}": [CALL, "line 1: unknown merge field 'joiner'"],
    "{{ namespace(a=1) }}": [CALL, "line 1: unknown merge field 'namespace'"],
    "{{ dict(a=1) }}": [CALL, "line 1: unknown merge field 'dict'"],
    "{{ first_name | attr('__class__') }}": ["line 1: No filter named 'attr'."],
    "{{ town | map('upper') }}": ["line 1: No filter named 'map'."],
    "{{ town | format('x') }}": ["line 1: No filter named 'format'."],
    "{{ click_url }}": ["line 1: unknown merge field 'click_url'"],
    "{{ open_url }}": ["line 1: unknown merge field 'open_url'"],
}

ALLOWED_TEMPLATES = [
    'Dear {{ first_name | default("Friend") | title }},',
    "{{ first_name | d('Friend') | upper | lower | capitalize | trim }}",
    "{{ town | e }}{{ town | escape }}{{ town | truncate(10) }}{{ town | replace('a', 'b') }}",
    "{{ town | round }}{{ town | int }}{{ town | striptags }}{{ town | wordcount }}",
    "{{ town | length }}{{ town | first }}{{ town | last }}{{ town | join(', ') }}",
    "{% if postcode %}{{ postcode }}{% elif country %}{{ country }}{% else %}-{% endif %}",
    "{% for w in town %}{{ w }}{% else %}none{% endfor %}",
    "{% set greeting = 'Hi' %}{{ greeting }} {{ first_name }}",
    "{{ email }} {{ last_name }} {{ language }} {{ organisation_name }}",
    "{{ action_url }} {{ unsubscribe_url }} {{ preferences_url }} {{ view_in_browser_url }}",
    "{% if first_name is defined %}{{ first_name }}{% endif %}",
]


@pytest.mark.parametrize("source, errors", REFUSED.items(), ids=list(REFUSED))
def test_refused_constructs_give_exactly_these_errors(source, errors):
    assert validate_template(source, ALLOWED) == errors


@pytest.mark.parametrize("source", ALLOWED_TEMPLATES)
def test_allowed_constructs_validate(source):
    assert validate_template(source, ALLOWED) == []


def test_errors_carry_their_own_line_and_sort_by_line_number():
    source = "{{ a }}\n" + "\n" * 8 + "{% include 'x' %}\n{{ b.c }}\n"
    assert validate_template("\n" + source, {"b"}) == [
        "line 2: unknown merge field 'a'",
        "line 11: {% include %} is not allowed in mailings",
        "line 12: attribute access (x.y) is not allowed in mailings",
    ]


def test_forbidden_constructs_are_reported_with_an_unknown_filter():
    source = "{% include 'x' %}\n\n\n\n\n\n\n\n\n{{ first_name | attr('y') }}"
    assert validate_template(source, ALLOWED) == [
        "line 1: {% include %} is not allowed in mailings",
        "line 10: No filter named 'attr'.",
    ]


def test_unknown_test_is_an_error():
    assert validate_template("{{ town is callable }}", ALLOWED) == []
    assert validate_template("{{ town is nope }}", ALLOWED) == ["line 1: No test named 'nope'."]


def test_syntax_error_gives_one_error_with_its_line():
    assert validate_template("ok\n{% for %}", ALLOWED) == [
        "line 2: Expected an expression, got 'end of statement block'"
    ]


def test_unknown_fields_are_listed_in_line_order_once_each():
    errors = validate_template("{{ zeta }}\n{{ alpha }}\n{{ zeta }}", set())
    assert errors == ["line 1: unknown merge field 'zeta'", "line 2: unknown merge field 'alpha'"]


def test_allowed_fields_are_the_standard_urls_constants_and_custom_ones():
    assert allowed_fields() == {
        "first_name",
        "last_name",
        "email",
        "postcode",
        "country",
        "language",
        "action_url",
        "unsubscribe_url",
        "preferences_url",
        "view_in_browser_url",
        "organisation_name",
    }
    assert allowed_fields({"town", "shoe_size"}) == allowed_fields() | {"town", "shoe_size"}
    assert allowed_fields(frozenset({"town"})) == ALLOWED
    assert {"organisation_name"} == FREEZE_FIELDS
    assert {"open_url", "click_url"} == TRACKING_URLS
    assert not (TRACKING_URLS & allowed_fields())
    assert allowed_fields() >= STANDARD_FIELDS | PER_RECIPIENT_URLS


def test_allowed_fields_returns_a_fresh_set():
    fields = allowed_fields()
    fields.add("anything")
    assert "anything" not in allowed_fields()


@ENVS
def test_environments_are_sandboxed_and_have_no_globals(env):
    assert isinstance(env, SandboxedEnvironment)
    assert env.globals == {}


@ENVS
@pytest.mark.parametrize("name", ["range", "lipsum", "cycler", "joiner", "namespace", "dict"])
def test_jinja_globals_are_gone_at_render_time(env, name):
    assert env.from_string(f"{{{{ {name} is defined }}}}").render() == "False"
    with pytest.raises(UndefinedError):
        env.from_string(f"{{{{ {name}() }}}}").render()


@ENVS
def test_only_the_listed_filters_exist(env):
    assert set(env.filters) == {
        "default",
        "d",
        "upper",
        "lower",
        "title",
        "capitalize",
        "trim",
        "e",
        "escape",
        "truncate",
        "replace",
        "round",
        "int",
        "striptags",
        "wordcount",
        "length",
        "first",
        "last",
        "join",
    }
    assert env.filters["d"] is env.filters["default"]


@ENVS
def test_the_sandbox_still_blocks_python_internals_at_render_time(env):
    with pytest.raises(SecurityError):
        env.from_string("{{ x.__class__.__mro__[1].__subclasses__() }}").render(x="")
    assert env.from_string("{{ x.__class__ }}").render(x="") == ""


@ENVS
def test_allowed_fields_render(env):
    template = env.from_string(
        '{{ first_name | default("Friend") | title }} of {{ town | upper }}: '
        "{% for w in words %}{{ w }}{% endfor %}/{{ words | join(', ') }}"
        "{% set n = words | length %} ({{ n }})"
    )
    assert template.render(town="Leeds", words=["a", "b"]) == "Friend of LEEDS: ab/a, b (2)"
    assert template.render(first_name="ana", town="x", words=[]) == "Ana of X: / (0)"


def test_html_env_escapes_quotes_too_and_text_env_does_not():
    assert html_env.autoescape is True and text_env.autoescape is False
    assert html_env.from_string("{{ v }}").render(v='<b a="1">&') == (
        "&lt;b a=&#34;1&#34;&gt;&amp;"
    )
    assert text_env.from_string("{{ v }}").render(v='<b a="1">&') == '<b a="1">&'


@ENVS
def test_line_endings_come_out_as_crlf_and_the_last_newline_is_kept(env):
    assert env.from_string("a\nb\n").render() == "a\r\nb\r\n"
    assert env.from_string("a\r\nb").render() == "a\r\nb"


def test_block_tags_on_their_own_line_leave_no_empty_line_in_text_only():
    source = "a\n{% if x %}\nyes\n{% endif %}\nb\n"
    assert text_env.from_string(source).render(x=1) == "a\r\nyes\r\nb\r\n"
    assert html_env.from_string(source).render(x=1) == "a\r\n\r\nyes\r\n\r\nb\r\n"
