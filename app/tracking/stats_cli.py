"""`clarion stats rebuild [--mailing ID]`: recompute stamps and rollups from the events.

Run nightly (or after restoring events from a backup, or once after migration 0009): it says
how many figures the live rollups had wrong, which should always be none.
"""

from __future__ import annotations

import click
from sqlalchemy import select

from app.extensions import db
from app.mailings.models import Mailing
from app.tracking.rebuild import differences, rebuild, rollup_state


@click.group("stats")
def stats_cli() -> None:
    """Mailing figures: the rollups kept current as events arrive."""


@stats_cli.command("rebuild")
@click.option(
    "--mailing", "mailing_id", type=click.IntRange(min=1), help="Only this mailing (default: all)."
)
def rebuild_command(mailing_id: int | None) -> None:
    """Recompute first-time stamps and rollups from tracking_events, and say what changed."""
    if mailing_id is not None:
        if db.session.get(Mailing, mailing_id) is None:
            raise click.ClickException(f"There is no mailing {mailing_id}.")
        ids = [mailing_id]
    else:
        ids = list(db.session.scalars(select(Mailing.id).order_by(Mailing.id)))
    before = {m: rollup_state(m) for m in ids}
    rebuild(mailing_id)
    db.session.commit()
    corrected = {m: differences(before[m], rollup_state(m)) for m in ids}
    wrong = {m: n for m, n in corrected.items() if n}
    click.echo(
        f"Rebuilt the rollups of {len(ids)} mailing(s); "
        f"{sum(wrong.values())} figure(s) differed from the live rollups."
    )
    for m, n in sorted(wrong.items()):
        click.echo(f"  mailing {m}: {n} figure(s) corrected")
