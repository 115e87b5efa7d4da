"""Chunk-wise quoted-printable bodies decode to exactly what the template renders."""

from __future__ import annotations

import quopri

import pytest

from mailers.merge import html_env, text_env
from mailers.message import _QuotedPrintableBody

SOURCE = (
    "<p>Dear {{ first_name | default('Friend') }},</p>\r\n"
    + "<p>"
    + "A long line of static text that goes on and on = with equals signs. " * 4
    + "</p>\r\n"
    + "{% if town %}<p>From {{ town }} </p>{% endif %}\r\n"
    + '<a href="{{ action_url }}">Act now</a>   \r\n'
)

VALUES = [
    {
        "first_name": "Zoë Ñúñez",
        "town": "Köln",
        "action_url": "https://act.example.org/a/" + "x" * 120,
    },
    {"first_name": "", "town": "", "action_url": "https://a.example/"},
    {"first_name": "trailing space ", "town": "=3D not an escape", "action_url": "https://a.b/c"},
    {
        "first_name": "<script>alert(1)</script>",
        "town": "😀" * 40,
        "action_url": "https://a.b/" + "é" * 60,
    },
    {"first_name": "x" * 300, "town": " " * 90, "action_url": "https://a.b/?q=1&r=2"},
]


@pytest.mark.parametrize("env", [html_env, text_env], ids=["html", "text"])
@pytest.mark.parametrize("values", VALUES)
def test_decodes_to_the_rendered_template(env, values):
    template = env.from_string(SOURCE)
    body = _QuotedPrintableBody(template, SOURCE)
    for _ in range(2):  # second time round the literal chunks come from the cache
        encoded = body.render(values)
        assert quopri.decodestring(encoded).decode("utf-8") == template.render(values)
        lines = encoded.split(b"\r\n")
        assert all(len(line) <= 76 for line in lines), max(lines, key=len)
        assert b"\n" not in encoded.replace(b"\r\n", b"")
