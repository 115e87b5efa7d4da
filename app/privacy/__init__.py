"""GDPR subject access (art. 15) and erasure (art. 17) across every domain.

Each domain contributes `export_supporter_data(supporter) -> dict` (its own top-level sections)
and `erase_supporter_data(supporter_id)`. This module only runs them in order; its API
(privacy/api.py) and CLI (privacy/cli.py) call it, and no domain imports it. A new table holding personal data gets its domain's two
functions, not a line here (unless it is a new domain).
"""

from __future__ import annotations

from app.campaigns import privacy as campaigns
from app.db import utcnow
from app.extensions import db
from app.mailings import privacy as mailings
from app.supporters import privacy as supporters
from app.supporters.models import Supporter
from app.tracking import privacy as tracking

# Lowest domain first, so the export reads from the person outwards.
EXPORT_ORDER = (supporters, mailings, tracking, campaigns)
# Highest first: each domain finds the person's rows by supporter_id while it still exists; the
# supporters domain goes last, because deleting the row is what unlinks everything it kept.
ERASE_ORDER = (campaigns, tracking, mailings, supporters)


def export_supporter(supporter: Supporter) -> dict:
    """Gather everything stored about one person, JSON-ready."""
    export: dict = {"exported_at": supporters.iso(utcnow())}
    for domain in EXPORT_ORDER:
        sections = domain.export_supporter_data(supporter)
        clash = export.keys() & sections.keys()
        if clash:
            raise RuntimeError(f"{domain.__name__} exports sections already taken: {clash}")
        export.update(sections)
    return export


def erase_supporter(supporter: Supporter) -> None:
    """Erase the person from every domain, keeping the counts; the caller commits."""
    supporter_id = supporter.id
    for domain in ERASE_ORDER:
        domain.erase_supporter_data(supporter_id)
    db.session.flush()
