"""The Dashboard: live progress, scheduled mailings, recent results and open campaigns."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import event, update

from app.auth.models import Role
from app.campaigns.models import CampaignStatus
from app.db import utcnow
from app.extensions import db
from app.mailings.models import Mailing, MailingStatus
from app.tracking import overview
from app.tracking.models import EventKind
from tests.campaigns.conftest import make_campaign
from tests.staff.test_results import percent, row, sent_mailing, squash, text_of


def test_no_mailings_yet_invites_writing_an_alert(staff_client):
    html = squash(text_of(staff_client(Role.ANALYST).get("/staff/")))
    assert re.search(r'No mailings yet — <a href="/staff/mailings/">write an alert</a>', html), (
        html[:3000]
    )
    assert "No campaign is open." in html


def test_sending_mailing_shows_progress_rate_and_time_left(staff_client):
    client = staff_client(Role.ANALYST)
    sent = sent_mailing(
        "Halt the flogging",
        recipients=100,
        queued=40,
        status=MailingStatus.SENDING,
        started_ago=timedelta(seconds=100),
    )
    db.session.commit()
    html = text_of(client.get("/staff/"))
    live = row(html, f'data-mailing-id="{sent.mailing_id}"', "li")
    done = sent.delivered
    assert (done, len(sent.delivery_ids)) == (60, 100)
    assert f'<span class="done">{done}</span> of <span class="total">100</span>' in live
    assert f'<progress id="progress-{sent.mailing_id}" max="100" value="{done}">' in live
    per_second = round(done / 100, 1)  # sent over the seconds since it started
    assert f'<dd class="rate">{round(per_second * 60)} a minute</dd>' in live
    minutes_left = max(round((100 - done) / per_second / 60), 1)
    assert f'<dd class="eta">about {minutes_left} min</dd>' in live
    # Pause and cancel live on the mailing's own page; the figures so far on its results page.
    assert f'href="/staff/mailings/{sent.mailing_id}"' in live
    assert f'href="/staff/results/{sent.mailing_id}"' in live
    # htmx refreshes this section from the fragment every 3 s.
    assert 'hx-get="/staff/live" hx-trigger="every 3s" hx-swap="outerHTML"' in squash(html)


def test_live_fragment_is_the_sending_section_alone(staff_client):
    client = staff_client(Role.ANALYST)
    sent = sent_mailing("Halt the flogging", recipients=5, queued=5, status=MailingStatus.SENDING)
    paused = sent_mailing("Paused one", recipients=3, queued=3, status=MailingStatus.PAUSED)
    db.session.commit()
    fragment = text_of(client.get("/staff/live"))
    assert fragment.lstrip().startswith("<section") and "<html" not in fragment
    assert fragment.count('<li class="live-mailing"') == 2
    assert '<span class="done">0</span> of <span class="total">5</span>' in squash(fragment)
    assert "Paused" in row(fragment, f'data-mailing-id="{paused.mailing_id}"', "li")
    db.session.execute(
        update(Mailing).where(Mailing.id == sent.mailing_id).values(status=MailingStatus.SENT)
    )
    db.session.execute(
        update(Mailing).where(Mailing.id == paused.mailing_id).values(status=MailingStatus.SENT)
    )
    db.session.commit()
    assert "Nothing is sending right now." in text_of(client.get("/staff/live"))


def test_fragment_needs_sign_in(anonymous_client):
    assert anonymous_client.get("/staff/live").status_code == 302


def test_scheduled_mailings_show_when(staff_client):
    client = staff_client(Role.ANALYST)
    when = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    sent = sent_mailing(
        "Tomorrow's alert", recipients=0, status=MailingStatus.SCHEDULED, scheduled_at=when
    )
    db.session.commit()
    html = text_of(client.get("/staff/"))
    line = row(html, f'data-mailing-id="{sent.mailing_id}"')
    assert "Tomorrow&#39;s alert" in line
    assert f'<time datetime="{when.isoformat()}">{when:%a %d %b %Y, %H:%M}</time>' in line
    assert "Nothing is sending right now." in html
    assert "No mailing has finished sending yet." in html


def test_recent_results_are_the_last_ten_finished_with_human_figures(staff_client):
    client = staff_client(Role.ANALYST)
    mailings = [
        sent_mailing(f"Alert {n}", recipients=4) for n in range(overview.RECENT_RESULTS + 1)
    ]
    newest = mailings[-1]
    now = utcnow()
    # Two people open; a scanner fetches the pixel for one of them and for a third recipient.
    newest.record(EventKind.OPEN, newest.delivery_ids[0], now)
    newest.record(EventKind.OPEN, newest.delivery_ids[1], now)
    newest.record(EventKind.OPEN, newest.delivery_ids[1], now, machine=True)
    newest.record(EventKind.OPEN, newest.delivery_ids[2], now, machine=True)
    newest.record(EventKind.CLICK, newest.delivery_ids[2], now, machine=True, link=1)
    newest.record(EventKind.CLICK, newest.delivery_ids[0], now, link=1)
    newest.record(EventKind.ACTION, newest.delivery_ids[0], now)
    newest.record(EventKind.UNSUBSCRIBE, newest.delivery_ids[3], now)
    db.session.commit()

    html = squash(text_of(client.get("/staff/")))
    shown = re.findall(r'<tr data-mailing-id="(\d+)"', html)
    assert shown == [str(m.mailing_id) for m in reversed(mailings[1:])]
    line = row(html, f'data-mailing-id="{newest.mailing_id}"')
    numbers = re.findall(r'<td class="num">([\d,]+)(?: <span class="muted">\(([^)]*)\))?', line)
    delivered = newest.delivered
    human_opens = newest.recipients(EventKind.OPEN, human=True)
    assert human_opens == 2 and newest.recipients(EventKind.OPEN) == 3
    assert numbers == [
        (str(delivered), ""),
        *[
            (str(n), percent(n, delivered))
            for n in (
                human_opens,
                newest.recipients(EventKind.CLICK, human=True),
                newest.recipients(EventKind.ACTION),
                newest.recipients(EventKind.UNSUBSCRIBE),
            )
        ],
    ]


def test_open_campaigns_show_deadline_in_their_time_zone(staff_client):
    client = staff_client(Role.ANALYST)
    deadline = (utcnow() + timedelta(days=3, hours=2)).replace(microsecond=0)
    campaign = make_campaign(deadline=deadline, timezone="America/New_York")
    make_campaign(slug="closed-one", title="Closed one", status=CampaignStatus.CLOSED)
    soon = make_campaign(
        slug="soon", title="Last hours", deadline=utcnow() + timedelta(hours=5, minutes=30)
    )
    db.session.commit()
    html = text_of(client.get("/staff/"))
    local = deadline.astimezone(ZoneInfo("America/New_York"))
    line = row(html, f'data-campaign-id="{campaign.id}"')
    assert f"{local:%a %d %b %Y, %H:%M} America/New_York" in line
    assert '<td class="time-left">3 days left</td>' in line
    assert '<td class="time-left">5 hours left</td>' in row(html, f'data-campaign-id="{soon.id}"')
    assert "Closed one" not in html


def test_dashboard_queries_do_not_grow_with_the_number_of_mailings(staff_client):
    client = staff_client(Role.ANALYST)

    def statements_for_dashboard() -> int:
        seen = []

        def count(*args):
            seen.append(args)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            text_of(client.get("/staff/"))
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    sent_mailing("First", recipients=2)
    db.session.commit()
    few = statements_for_dashboard()
    for n in range(12):
        sent = sent_mailing(f"More {n}", recipients=2)
        sent.record(EventKind.OPEN, sent.delivery_ids[0], utcnow())
    db.session.commit()
    assert statements_for_dashboard() == few


def test_every_staff_role_may_see_the_dashboard(staff_client):
    for role in (Role.ANALYST, Role.CAMPAIGNER, Role.ADMIN):
        assert staff_client(role).get("/staff/").status_code == 200
