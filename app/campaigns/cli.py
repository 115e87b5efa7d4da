"""`clarion campaigns …`: list campaigns and export their letters for the post."""

from __future__ import annotations

import click

from app.campaigns.letters import letters_csv
from app.campaigns.models import Campaign
from app.campaigns.services import (
    action_count,
    all_campaigns,
    close_expired,
    deadline_passed_on,
)
from app.extensions import db


@click.group("campaigns")
def campaigns_cli() -> None:
    """List campaigns and export their letters."""


@campaigns_cli.command("list")
def list_command() -> None:
    """List campaigns with their state, deadline and number of actions."""
    closed = close_expired()
    db.session.commit()
    if closed:
        click.echo(f"Closed {closed} campaign(s) past their deadline.", err=True)
    campaigns = all_campaigns()
    if not campaigns:
        click.echo("No campaigns yet.")
        return
    for campaign in campaigns:
        state = "open" if campaign.is_open() else campaign.status.value
        deadline = deadline_passed_on(campaign) or "no deadline"
        click.echo(
            f"{campaign.id:>4}  {state:<6}  {campaign.kind.value:<8}  {deadline:<17}  "
            f"{action_count(campaign.id):>6} actions  {campaign.slug}  {campaign.title}"
        )


@campaigns_cli.command("letters")
@click.argument("campaign_id", type=int)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the CSV here instead of to standard output.",
)
def letters_command(campaign_id: int, output: str | None) -> None:
    """Export a campaign's letters as CSV (the held ones are for printing and posting)."""
    if db.session.get(Campaign, campaign_id) is None:
        raise click.ClickException(f"No campaign with id {campaign_id}.")
    text = letters_csv(campaign_id)
    if output:
        with open(output, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        click.echo(f"Wrote the letters to {output}.", err=True)
    else:
        click.echo(text, nl=False)
