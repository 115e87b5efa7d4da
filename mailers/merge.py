"""Merge fields: the sandboxed Jinja environments and the checks staff templates must pass.

Staff write subjects and bodies with `{{ first_name | default("Friend") }}` style merge fields.
Templates run in Jinja's sandbox with a short list of filters and no globals, and validation
refuses anything beyond variables, filters, conditionals and loops, so a template can neither
reach Python internals nor pull in other templates.
"""

from __future__ import annotations

import re

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.exceptions import TemplateAssertionError
from jinja2.sandbox import SandboxedEnvironment

STANDARD_FIELDS = frozenset({"first_name", "last_name", "email", "postcode", "country", "language"})
# Links signed per recipient; render.py never turns these into tracked links.
PER_RECIPIENT_URLS = frozenset(
    {"action_url", "unsubscribe_url", "preferences_url", "view_in_browser_url"}
)
# Constants render.py fills in once, when the mailing is frozen.
FREEZE_FIELDS = frozenset({"organisation_name"})
# Filled in by render.py only; staff templates may not use them.
TRACKING_URLS = frozenset({"open_url", "click_url"})

_FILTERS = (
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
)

# Nodes a staff template may not contain, with the reason shown to them.
_FORBIDDEN = {
    nodes.Include: "{% include %} is not allowed in mailings",
    nodes.Import: "{% import %} is not allowed in mailings",
    nodes.FromImport: "{% from … import %} is not allowed in mailings",
    nodes.Extends: "{% extends %} is not allowed in mailings",
    nodes.Macro: "{% macro %} is not allowed in mailings",
    nodes.CallBlock: "{% call %} is not allowed in mailings",
    nodes.Call: "calling functions is not allowed in mailings; use filters",
    nodes.Getattr: "attribute access (x.y) is not allowed in mailings",
    nodes.Getitem: "item access (x[y]) is not allowed in mailings",
}


def _environment(*, autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        autoescape=autoescape,
        # Message bodies go out with CRLF line endings; let Jinja produce them in the template
        # text so nothing has to rewrite a whole body per recipient.
        newline_sequence="\r\n",
        keep_trailing_newline=True,
        # In plain text a block tag on its own line should not leave an empty line behind.
        trim_blocks=not autoescape,
    )
    env.filters = {name: env.filters[name] for name in _FILTERS}
    env.globals = {}
    return env


html_env = _environment(autoescape=True)
text_env = _environment(autoescape=False)


def allowed_fields(custom_fields: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Return every name a staff template may use, given the organisation's custom fields."""
    return set(STANDARD_FIELDS | PER_RECIPIENT_URLS | FREEZE_FIELDS | set(custom_fields))


def validate_template(source: str, allowed_fields: set[str]) -> list[str]:
    """Return human-readable problems with a staff template; an empty list means it is fine."""
    try:
        tree = text_env.parse(source)
    except TemplateSyntaxError as exc:
        return [f"line {exc.lineno}: {exc.message}"]
    errors = []
    for node_type, message in _FORBIDDEN.items():
        for node in tree.find_all(node_type):
            errors.append(f"line {node.lineno}: {message}")
    try:
        # Compiling finds unknown filters and tests, which parsing alone lets through.
        undeclared = meta.find_undeclared_variables(tree)
    except TemplateAssertionError as exc:
        return sorted(set(errors + [f"line {exc.lineno}: {exc.message}"]), key=_line_order)
    for name in sorted(undeclared - set(allowed_fields)):
        line = next(
            (n.lineno for n in tree.find_all(nodes.Name) if n.name == name and n.ctx == "load"),
            None,
        )
        where = f"line {line}: " if line else ""
        errors.append(f"{where}unknown merge field '{name}'")
    return sorted(set(errors), key=_line_order)


def _line_order(error: str) -> tuple[int, str]:
    match = re.match(r"line (\d+):", error)
    return (int(match.group(1)) if match else 0, error)
