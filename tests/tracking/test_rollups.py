"""Rollups kept as events arrive: stamps set once, scanners re-judged, the rebuild agreeing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update

from app.db import utcnow
from app.extensions import db
from app.links.tokens import LinkClaims, Purpose
from app.mailings.delivery.outcomes import settle_outcome_counts
from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingStatus
from app.tracking import buffer, machine, services
from app.tracking.models import (
    EventKind,
    LinkRollup,
    MailingHourlyRollup,
    MailingRollup,
    TrackingEvent,
)
from app.tracking.rebuild import rebuild, rollup_state
from app.tracking.stats import mailing_stats
from app.tracking.stats_cli import stats_cli
from tests.factories import make_delivery, make_sent_mailing, make_supporter
from tests.tracking.conftest import drain

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}
MPP = {"User-Agent": "Mozilla/5.0"}


def setup_mailing(tokens, count=2):
    mailing = make_sent_mailing()
    people = []
    for n in range(count):
        supporter = make_supporter(f"r{n}@example.org")
        delivery = make_delivery(mailing, supporter, sent_ago=timedelta(hours=2))
        people.append((supporter.id, delivery.id))
    mailing_id = mailing.id
    db.session.commit()

    def path(purpose, supporter_id, suffix=""):
        prefix = {Purpose.OPEN: "o", Purpose.CLICK: "c", Purpose.UNSUBSCRIBE: "u"}[purpose]
        return f"/{prefix}/{tokens.dumps(purpose, mailing_id, supporter_id)}{suffix}"

    return mailing_id, people, path


def stamps(delivery_id):
    return db.session.execute(
        select(
            Delivery.opened_at,
            Delivery.human_opened_at,
            Delivery.clicked_at,
            Delivery.human_clicked_at,
        )
        .where(Delivery.id == delivery_id)
        .execution_options(populate_existing=True)
    ).one()


def agrees_with_rebuild(mailing_id) -> bool:
    live = rollup_state(mailing_id)
    rebuild(mailing_id)
    return rollup_state(mailing_id) == live


def test_repeated_opens_and_a_batch_drained_twice_count_once(client, tokens):
    mailing_id, [(a, a_delivery), (b, _)], path = setup_mailing(tokens)
    for _ in range(3):
        client.get(path(Purpose.OPEN, a, ".gif"), headers=BROWSER)
    client.get(path(Purpose.OPEN, b, ".gif"), headers=MPP)
    client.get(path(Purpose.CLICK, a, "/1"), headers=BROWSER)
    buffer.outbox.flush()
    redis = buffer._client(client.application.config["CLARION"].redis_url)
    key = buffer.events_key(client.application.config["CLARION"])
    queued = redis.lrange(key, 0, -1)
    assert drain() == 5
    redis.rpush(key, *queued)  # a drainer lost its lock: the whole batch comes again
    assert drain() == 5

    stats = mailing_stats(mailing_id)
    assert stats["opens"] == {"all": 2, "human": 1}
    assert stats["clicks"] == {"all": 1, "human": 1}
    rollup = db.session.get(MailingRollup, mailing_id)
    # a: one human open row (the click's implied open is the same row); b: one machine open.
    assert (rollup.open_events, rollup.human_open_events) == (2, 1)
    opened, human_opened, clicked, human_clicked = stamps(a_delivery)
    assert opened == human_opened <= clicked == human_clicked
    assert agrees_with_rebuild(mailing_id)


def test_a_scanner_burst_takes_back_the_human_open_and_clicks(client, tokens):
    mailing_id, [(a, a_delivery), _], path = setup_mailing(tokens)
    client.get(path(Purpose.OPEN, a, ".gif"), headers=BROWSER)
    drain()
    assert mailing_stats(mailing_id)["opens"] == {"all": 1, "human": 1}
    for link in (1, 2, 3):  # three links within the burst window: a scanner, not a person
        client.get(path(Purpose.CLICK, a, f"/{link}"), headers=BROWSER)
    drain()

    stats = mailing_stats(mailing_id)
    assert stats["opens"] == {"all": 1, "human": 0}
    assert stats["clicks"] == {"all": 1, "human": 0}
    opened, human_opened, clicked, human_clicked = stamps(a_delivery)
    assert opened is not None and clicked is not None
    assert human_opened is None and human_clicked is None
    links = {r.link_position: r for r in db.session.scalars(select(LinkRollup))}
    assert {p: (r.clicks, r.human_clicks) for p, r in links.items()} == {
        1: (1, 0),
        2: (1, 0),
        3: (1, 0),
    }
    hourly = db.session.scalars(
        select(MailingHourlyRollup).where(MailingHourlyRollup.mailing_id == mailing_id)
    ).all()
    assert sum(h.human_opens for h in hourly) == 0 and sum(h.opens for h in hourly) == 1
    assert sum(h.human_click_events for h in hourly) == 0
    assert agrees_with_rebuild(mailing_id)


def test_an_earlier_event_recorded_late_moves_the_first_time_stamp(tokens):
    mailing_id, [(a, a_delivery), _], _ = setup_mailing(tokens)
    hour = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    later, earlier = hour + timedelta(minutes=5), hour - timedelta(minutes=5)
    # Recorded out of order, as two web processes' buffers may: a person's click (and the
    # open it implies), then an image proxy's fetch from before it.
    buffer.apply_events([("c", mailing_id, a, 1, BROWSER["User-Agent"], "GET", later)])
    buffer.apply_events([("o", mailing_id, a, 0, MPP["User-Agent"], "GET", earlier)])

    assert stamps(a_delivery) == (earlier, later, later, later)
    hourly = {
        row.hour: (row.opens, row.human_opens)
        for row in db.session.scalars(
            select(MailingHourlyRollup).where(MailingHourlyRollup.mailing_id == mailing_id)
        )
    }
    assert hourly == {hour - timedelta(hours=1): (1, 0), hour: (0, 1)}
    assert mailing_stats(mailing_id)["opens"] == {"all": 1, "human": 1}
    assert agrees_with_rebuild(mailing_id)


def test_actions_and_unsubscribes_count_each_recipient_once(client, tokens):
    mailing_id, [(a, _), (b, _)], path = setup_mailing(tokens)
    one_click = {"List-Unsubscribe": "One-Click"}
    client.post(path(Purpose.UNSUBSCRIBE, a), data=one_click)
    client.post(path(Purpose.UNSUBSCRIBE, a), data=one_click)
    verdict = machine.Verdict(False, "", "browser")
    for _ in range(2):
        services.record_event(EventKind.ACTION, LinkClaims(mailing_id, b), verdict)
    db.session.commit()
    stats = mailing_stats(mailing_id)
    assert stats["unsubscribes"] == {"all": 1, "human": 1}
    assert stats["actions"] == {"all": 1, "human": 1}
    assert agrees_with_rebuild(mailing_id)


def test_figures_are_read_from_the_rollups_not_the_events(client, tokens, api_token):
    mailing_id, [(a, _), (b, _)], path = setup_mailing(tokens)
    client.get(path(Purpose.OPEN, a, ".gif"), headers=BROWSER)
    client.get(path(Purpose.OPEN, b, ".gif"), headers=MPP)
    drain()
    expected = mailing_stats(mailing_id)
    # The events going away (say, an old partition dropped) leaves the figures as they were.
    db.session.execute(delete(TrackingEvent).where(TrackingEvent.mailing_id == mailing_id))
    db.session.commit()
    response = client.get(f"/api/v1/mailings/{mailing_id}/stats", headers=api_token("analyst"))
    assert response.status_code == 200
    figures = response.get_json()
    sent = expected["deliveries"]["sent"]
    assert figures.pop("rates")["open_rate"] == {"all": 2 / sent, "human": 1 / sent}
    assert figures == expected
    assert expected["opens"] == {"all": 2, "human": 1}


def test_the_direct_path_counts_when_redis_is_away(tokens):
    mailing_id, [(a, _), _], _ = setup_mailing(tokens)
    claims = LinkClaims(mailing_id, a)
    services.record_open(claims, BROWSER["User-Agent"], "GET")
    link = services.find_link(mailing_id, 2)
    services.record_click(claims, 2, link, BROWSER["User-Agent"], "GET")
    db.session.commit()
    stats = mailing_stats(mailing_id)
    assert stats["opens"] == {"all": 1, "human": 1}
    assert stats["clicks"] == {"all": 1, "human": 1}
    assert agrees_with_rebuild(mailing_id)


def test_rebuild_command_corrects_a_wrong_rollup_and_says_so(app, client, tokens):
    mailing_id, [(a, _), _], path = setup_mailing(tokens)
    client.get(path(Purpose.OPEN, a, ".gif"), headers=BROWSER)
    drain()
    runner = app.test_cli_runner()
    result = runner.invoke(stats_cli, ["rebuild", "--mailing", str(mailing_id)])
    assert result.exit_code == 0, result.output
    assert "0 figure(s) differed" in result.output

    db.session.execute(
        update(MailingRollup).where(MailingRollup.mailing_id == mailing_id).values(opens=7)
    )
    db.session.commit()
    result = runner.invoke(stats_cli, ["rebuild"])
    assert result.exit_code == 0, result.output
    assert "1 figure(s) differed" in result.output
    assert f"mailing {mailing_id}: 1 figure(s) corrected" in result.output
    assert mailing_stats(mailing_id)["opens"] == {"all": 1, "human": 1}

    missing = runner.invoke(stats_cli, ["rebuild", "--mailing", "987654"])
    assert missing.exit_code != 0 and "There is no mailing 987654" in missing.output


def test_a_finished_mailing_reads_its_settled_outcome_counts(tokens):
    mailing_id, [(_, first), (_, second)], _ = setup_mailing(tokens)
    mailing = db.session.get(Mailing, mailing_id)
    mailing.status = MailingStatus.SENDING
    db.session.get(Delivery, second).status = DeliveryStatus.DEFERRED
    db.session.commit()
    assert settle_outcome_counts(mailing_id) is None  # a retry is still due: not final
    assert mailing_stats(mailing_id)["deliveries"]["deferred"] == 1

    db.session.get(Delivery, second).status = DeliveryStatus.FAILED
    db.session.get(Mailing, mailing_id).status = MailingStatus.SENT
    db.session.commit()
    settled = settle_outcome_counts(mailing_id)
    assert settled["sent"] == 1 and settled["failed"] == 1 and settled["total"] == 2
    db.session.commit()
    # Read from the mailing row now: the deliveries are not counted again.
    db.session.execute(update(Delivery).where(Delivery.id == first).values(status="cancelled"))
    assert mailing_stats(mailing_id)["deliveries"] == settled
    rebuild(mailing_id)  # … and the rebuild counts them afresh
    assert mailing_stats(mailing_id)["deliveries"]["cancelled"] == 1
