"""`clarion demo load`: demo data so a local run has something to work with.

Loading is idempotent: it adds whatever demo data is missing and changes nothing that exists,
so a second run (or a run after you have edited the demo data) leaves the database as it is.
One part per domain, loaded in domain order: `supporters` (lists, tags, people, a segment),
`mailings` (a draft mailing), `campaigns` (three Urgent Actions, linked to that mailing). A new
domain's demo records go in a part of their own, loaded by `load_command`.
"""

from __future__ import annotations

import click
from flask import current_app

from app.demo.campaigns import DEMO_MAILING_NAME, LINKED_SLUG, load_demo_campaigns
from app.demo.mailings import load_demo_mailing
from app.demo.supporters import (
    SEGMENT_NAME,
    SUPPORTER_COUNT,
    DemoSummary,
    build_demo_supporters,
    demo_counts,
    load_demo_data,
)
from app.extensions import db

__all__ = [
    "DEMO_MAILING_NAME",
    "LINKED_SLUG",
    "SEGMENT_NAME",
    "SUPPORTER_COUNT",
    "DemoSummary",
    "build_demo_supporters",
    "demo_cli",
    "demo_counts",
    "load_demo_campaigns",
    "load_demo_data",
    "load_demo_mailing",
]


@click.group("demo")
def demo_cli() -> None:
    """Demo data."""


@demo_cli.command("load")
def load_command() -> None:
    """Load demo lists, tags, supporters, a segment and a draft mailing (safe to run again)."""
    if current_app.config["CLARION"].is_production:
        raise click.ClickException("Refusing to load fake supporters into a production database.")
    summary = load_demo_data(db.session)
    summary.mailings = load_demo_mailing(db.session, current_app.config["CLARION"])
    click.echo(f"Demo campaigns added: {load_demo_campaigns(db.session)}")
    db.session.commit()
    click.echo("Demo data added: " + ", ".join(summary.lines()))
    click.echo(
        "Now in the database: "
        + ", ".join(f"{table} {count}" for table, count in demo_counts(db.session).items())
    )
