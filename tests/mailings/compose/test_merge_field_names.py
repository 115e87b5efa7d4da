"""mailers/merge.py holds the one list of built-in merge fields; what fills them and what
documents them must agree with it."""

from __future__ import annotations

from app.config import PROJECT_ROOT
from app.links.tokens import TokenService
from app.links.urls import recipient_urls
from app.mailings.compose.rendering import supporter_fields
from app.supporters.models import Supporter
from mailers.merge import PER_RECIPIENT_URLS, STANDARD_FIELDS, TRACKING_URLS, allowed_fields


def test_the_context_builders_fill_every_listed_field():
    person = Supporter(email="ann@example.org", first_name="Ann", custom_fields={"town": "Leeds"})
    assert set(supporter_fields(person)) == STANDARD_FIELDS | {"town"}
    urls = recipient_urls("https://clarion.test", TokenService(["k" * 32]), 1, 2)
    assert set(urls) >= PER_RECIPIENT_URLS | TRACKING_URLS


def test_the_readme_names_every_link_field_staff_may_use():
    readme = (PROJECT_ROOT / "README.md").read_text()
    missing = [f for f in sorted(PER_RECIPIENT_URLS) if f"{{{{ {f} }}}}" not in readme]
    assert not missing
    assert not (TRACKING_URLS & allowed_fields())
