"""`clarion mailings …`: compose, preview, test, send and follow mailings from a terminal."""

from __future__ import annotations

import time
from datetime import datetime

import click
from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.mailings.compose import previews, services
from app.mailings.compose.recipients import sender_of
from app.mailings.delivery import control
from app.mailings.delivery.campaign_gate import linked_campaign
from app.mailings.delivery.launch import SendError
from app.mailings.models import Mailing, MailingStatus
from app.supporters.emails import email_for_lookup
from app.supporters.models import MailingList, Supporter

ACTOR = "cli"
# A watch ends when nothing more will happen without someone acting.
WATCH_UNTIL = (MailingStatus.SENT, MailingStatus.CANCELLED, MailingStatus.PAUSED)


@click.group("mailings")
def mailings_cli() -> None:
    """Compose, preview, test and send mailings."""


def _settings():
    return current_app.config["CLARION"]


def _mailing(mailing_id: int, *, lock: bool = False) -> Mailing:
    mailing = db.session.get(Mailing, mailing_id, with_for_update=lock)
    if mailing is None:
        raise click.ClickException(f"No mailing with id {mailing_id}.")
    return mailing


def _supporter(email: str | None) -> Supporter | None:
    if not email:
        return None
    supporter = db.session.scalar(
        select(Supporter).where(Supporter.email == email_for_lookup(email))
    )
    if supporter is None:
        raise click.ClickException(f"No supporter with email {email!r}.")
    return supporter


def _fail(exc: Exception) -> click.ClickException:
    lines = [str(exc)]
    for field, problems in getattr(exc, "details", {}).items():
        if isinstance(problems, dict):
            problems = [f"{key}: {p}" for key, items in problems.items() for p in items]
        elif not isinstance(problems, list):
            problems = [problems]
        lines += [f"  {field}: {problem}" for problem in problems]
    return click.ClickException("\n".join(lines))


@mailings_cli.command("list")
@click.option("--status", type=click.Choice([s.value for s in MailingStatus]))
def list_command(status) -> None:
    """List mailings, newest first."""
    found = False
    for mailing in db.session.scalars(services.mailings_newest_first(status)):
        found = True
        when = mailing.scheduled_at.strftime("%Y-%m-%d %H:%M") if mailing.scheduled_at else "-"
        click.echo(
            f"{mailing.id:>6}  {mailing.status.value:<9}  {when:<16}  "
            f"{mailing.total_recipients:>8}  {mailing.name}"
        )
    if not found:
        click.echo("No mailings.")


@mailings_cli.command("show")
@click.argument("mailing_id", type=int)
def show_command(mailing_id) -> None:
    """Show a mailing's settings and state."""
    mailing = _mailing(mailing_id)
    rows = [
        ("id", mailing.id),
        ("name", mailing.name),
        ("status", mailing.status.value),
        ("reason", mailing.status_reason),
        ("subject", mailing.subject),
        ("preheader", mailing.preheader),
        ("from", " ".join(filter(None, sender_of(mailing, _settings())))),
        ("reply to", mailing.reply_to),
        ("layout", mailing.layout),
        ("body", f"{len(mailing.body_mjml)} characters of MJML" if mailing.body_mjml else None),
        ("audience", mailing.audience or "nobody"),
        ("campaign", _campaign_line(mailing.campaign_id)),
        ("send rate", f"{mailing.send_rate}/s" if mailing.send_rate else "as fast as allowed"),
        ("scheduled", mailing.scheduled_at),
        ("frozen", mailing.frozen_at),
        ("started", mailing.started_at),
        ("finished", mailing.finished_at),
        ("recipients", mailing.total_recipients),
    ]
    for label, value in rows:
        if value not in (None, ""):
            click.echo(f"{label + ':':<12} {value}")


def _campaign_line(campaign_id: int | None) -> str | None:
    if campaign_id is None:
        return None
    campaign = linked_campaign(campaign_id)
    if campaign is None:
        return f"{campaign_id} (deleted)"
    status = campaign.status
    if status == "open" and not campaign.is_open:
        status = "open, past its deadline"
    return f'{campaign.id} "{campaign.title}" ({status})'


@mailings_cli.command("create")
@click.option("--name", required=True)
@click.option("--subject", required=True, help="Merge fields allowed: {{ first_name }}.")
@click.option("--layout", required=True, help="A layout folder in templates/emails.")
@click.option("--list", "lists", multiple=True, help="Send to this list (by name; repeatable).")
@click.option("--campaign", "campaign_id", type=int, help="The campaign {{ action_url }} opens.")
def create_command(name, subject, layout, lists, campaign_id) -> None:
    """Create a draft mailing from a layout."""
    list_ids = []
    for list_name in lists:
        list_id = db.session.scalar(select(MailingList.id).where(MailingList.name == list_name))
        if list_id is None:
            raise click.ClickException(f"No list named {list_name!r}.")
        list_ids.append(list_id)
    data = {"name": name, "subject": subject, "layout": layout}
    if list_ids:
        data["audience"] = {"include_lists": list_ids}
    if campaign_id is not None:
        data["campaign_id"] = campaign_id
    try:
        mailing = services.create_mailing(data)
    except services.MailingError as exc:
        raise _fail(exc) from exc
    db.session.commit()
    click.echo(f"Created draft mailing {mailing.id}.")


@mailings_cli.command("preview")
@click.argument("mailing_id", type=int)
@click.option("--supporter", "email", help="Render as this supporter (default a sample).")
@click.option("--text", "as_text", is_flag=True, help="Show the plain-text part, not the HTML.")
def preview_command(mailing_id, email, as_text) -> None:
    """Print the mailing as a supporter would get it."""
    mailing = _mailing(mailing_id)
    try:
        shown = previews.preview(mailing, _supporter(email), _settings())
    except services.MailingError as exc:
        raise _fail(exc) from exc
    click.echo(f"Subject: {shown['subject']}\n")
    click.echo(shown["text"] if as_text else shown["html"])


@mailings_cli.command("test")
@click.argument("mailing_id", type=int)
@click.option("--to", "addresses", multiple=True, required=True, help="Repeatable; at most 20.")
@click.option("--supporter", "email", help="Fill merge fields from this supporter.")
def test_command(mailing_id, addresses, email) -> None:
    """Send "[TEST] " copies now; nothing is counted."""
    mailing = _mailing(mailing_id)
    try:
        results = previews.test_send(mailing, list(addresses), _settings(), _supporter(email))
    except services.MailingError as exc:
        raise _fail(exc) from exc
    for result in results:
        if result["ok"]:
            click.echo(f"sent    {result['address']}  {result['message_id']}")
        else:
            click.echo(f"FAILED  {result['address']}: {result['error']}", err=True)
    if not all(result["ok"] for result in results):
        raise click.exceptions.Exit(1)


@mailings_cli.command("send")
@click.argument("mailing_id", type=int)
@click.option("--at", "at", help="ISO 8601 time with a timezone, e.g. 2030-01-01T09:00+00:00.")
def send_command(mailing_id, at) -> None:
    """Freeze a draft and schedule its send (now, or --at a later time)."""
    when = None
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError as exc:
            raise click.BadParameter(f"not an ISO 8601 time: {at!r}", param_hint="--at") from exc
        if when.tzinfo is None:
            raise click.BadParameter("give a timezone, e.g. +00:00", param_hint="--at")
    mailing = _mailing(mailing_id, lock=True)
    try:
        services.send_mailing(mailing, _settings(), at=when, actor=ACTOR)
    except services.MailingError as exc:
        raise _fail(exc) from exc
    db.session.commit()
    click.echo(f"Mailing {mailing.id} scheduled for {mailing.scheduled_at:%Y-%m-%d %H:%M:%S %Z}.")


def _control(mailing_id: int, action) -> None:
    mailing = _mailing(mailing_id, lock=True)
    try:
        action(mailing)
    except (control.ControlError, SendError) as exc:
        raise _fail(exc) from exc
    db.session.commit()
    click.echo(f"Mailing {mailing.id} is {mailing.status.value}.")


@mailings_cli.command("pause")
@click.argument("mailing_id", type=int)
def pause_command(mailing_id) -> None:
    """Pause a scheduled or sending mailing."""
    _control(mailing_id, lambda m: control.pause(m, actor=ACTOR))


@mailings_cli.command("resume")
@click.argument("mailing_id", type=int)
def resume_command(mailing_id) -> None:
    """Resume a paused mailing."""
    _control(mailing_id, lambda m: control.resume(m, _settings(), actor=ACTOR))


@mailings_cli.command("cancel")
@click.argument("mailing_id", type=int)
def cancel_command(mailing_id) -> None:
    """Cancel a mailing for good."""
    _control(mailing_id, lambda m: control.cancel(m, actor=ACTOR))


@mailings_cli.command("status")
@click.argument("mailing_id", type=int)
@click.option("--watch", is_flag=True, help="Show a live progress bar until it stops.")
def status_command(mailing_id, watch) -> None:
    """Show how far a mailing has got."""
    mailing = _mailing(mailing_id)
    if not watch:
        report = services.status_report(mailing)
        click.echo(f"{report['status']}: {report['done']}/{report['total']} done")
        if report["reason"]:
            click.echo(f"reason: {report['reason']}")
        counts = ", ".join(f"{k} {v}" for k, v in report["counts"].items() if v)
        click.echo(f"deliveries: {counts or 'none yet'}")
        if report["rate_per_second"]:
            click.echo(f"rate: {report['rate_per_second']}/s, {_eta(report['eta_seconds'])}")
        return
    _watch(mailing)


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA -"
    minutes, secs = divmod(int(seconds), 60)
    return f"ETA {minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def _watch(mailing: Mailing) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (
        TextColumn("[bold]{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}  {task.fields[eta]}"),
    )
    with Progress(*columns, console=Console(), refresh_per_second=4) as bar:
        task = bar.add_task(mailing.status.value, total=None, rate="", eta="")
        while True:
            report = services.status_report(mailing)
            rate = report["rate_per_second"]
            bar.update(
                task,
                description=report["status"],
                completed=report["done"],
                total=report["total"] or None,
                rate=f"{rate}/s" if rate else "-/s",
                eta=_eta(report["eta_seconds"]),
            )
            if mailing.status in WATCH_UNTIL or mailing.status == MailingStatus.DRAFT:
                break
            time.sleep(1)
            # Each query reads what the workers committed since (read committed); only the
            # mailing row cached in the session needs reloading.
            db.session.expire_all()
    click.echo(f"Mailing {mailing.id} is {mailing.status.value}.")
