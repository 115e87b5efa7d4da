"""Time the staff Dashboard, Results, Supporters and Lists pages at 1,000,000 supporters.

Builds a scratch PostgreSQL database `clarion_bench_staff` (dropped and re-created), migrates
it and fills it with generate_series: --supporters supporters with varied names, addresses,
postcodes and statuses, in four lists (the largest holds half of everyone) and four tags;
--mailings mailings (two of them still sending) sharing one delivery per supporter, and opens,
clicks, actions, unsubscribes and bounces by people and machines over two days. Then, for each
page, it prints min/median/p95 of the server time (the Flask test client, signed in as an
analyst: routing, queries, templates) and, beside it, of the bare SQL: the statements that page
ran, replayed on a plain connection. Targets (issue #11), server p95: the supporters list and
every search ≤ 100 ms, the dashboard ≤ 150 ms; OK/OVER per page, a summary line at the end.

    .venv/bin/python bench/bench_staff_pages.py [--supporters N] [--mailings N] [--runs N]
                                                [--admin-url postgresql://…/postgres]
                                                [--try-index]  (then time again with an index)
                                                [--try-unprepared]  (then again, psycopg
                                                                     preparing nothing)
                                                [--quick]   (or BENCH_QUICK=1: 5,000 supporters)
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from urllib.parse import urlencode

import psycopg
from sqlalchemy import event

from app import create_app
from app.auth.accounts import create_user
from app.auth.models import Role
from app.config import Settings, normalise_database_url
from app.db import utcnow
from app.extensions import db
from app.tracking.rebuild import rebuild

# `make bench-smoke` sets a suffix and its own Redis db so it never meets a full run or pytest.
DB_NAME = "clarion_bench_staff" + os.environ.get("BENCH_DB_SUFFIX", "")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
QUICK = {"supporters": 5_000, "runs": 3}
# Issue #11: server p95 per page.
DASHBOARD_TARGET_MS = 150
SUPPORTERS_TARGET_MS = 100

FIRST_NAMES = [
    "James", "Mary", "Mohammed", "Sarah", "David", "Emma", "John", "Olivia", "Daniel", "Sophie",
    "Michael", "Amira", "Thomas", "Chloe", "Oliver", "Priya", "Jack", "Grace", "Harry", "Hannah",
    "Chen", "Fatima", "Oluwaseun", "Aoife", "Siobhan", "Tomasz", "Agnieszka", "Ravi", "Leah",
    "Kwame", "Ines", "Mateo", "Yusuf", "Zara", "Niamh", "Dmitri", "Anya", "Kofi", "Mei", "Eilidh",
]  # fmt: skip
LAST_NAMES = [
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
    "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards",
    "Hughes", "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel", "Khan", "Jackson", "Wood",
    "Turner", "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark", "Lee", "King",
    "Baker", "Harrison", "Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis",
    "Parker", "Price", "Bennett", "Young", "Griffiths", "Mitchell", "Kelly", "Cook", "Carter",
    "Richardson", "Bailey", "Collins", "Bell", "Shaw", "Murphy", "Miller", "Cox", "Richards",
    "Nguyen", "Okafor", "Kowalski", "Garcia", "O'Brien", "Van der Berg", "Mensah", "Ahmed",
]  # fmt: skip
POSTCODE_AREAS = [
    "SW", "SE", "N", "NW", "E", "W", "EC", "WC", "M", "B", "L", "LS", "S", "G", "EH", "CF", "BS",
    "NG", "LE", "CV", "OX", "CB", "BN", "PL", "EX", "YO", "NE", "DH", "AB", "IV", "BT", "SA",
]  # fmt: skip
DOMAINS = [
    "gmail.com", "hotmail.co.uk", "yahoo.co.uk", "outlook.com", "btinternet.com", "icloud.com",
    "live.co.uk", "protonmail.com", "example.org",
]  # fmt: skip
# (name, share of all supporters): at 1,000,000 the newsletter has 500,000 members.
LISTS = [
    ("Newsletter", 0.5),
    ("Urgent action network", 0.2),
    ("Local group: Leeds", 0.02),
    ("Volunteers", 0.001),
]
TAGS = [("petition-2025", 0.3), ("donor", 0.05), ("event-2024", 0.005), ("press", 0.0001)]
PASSWORD = "bench password, long enough"
LINKS = 3

# Mailing m (1-based) goes to the supporters with id % mailings = m - 1; the last two are still
# sending (a tenth of their rows queued). Per delivery, a hash of its id decides what happened:
# ~30 % opened by a person, ~40 % had the pixel fetched by a proxy, ~6 % clicked (a link each),
# ~1 % acted, ~0.3 % unsubscribed, ~0.5 % bounced, ~1 % failed.
FILL_SQL = [
    # Names, addresses and postcodes drawn from small arrays by stable hashes of the id, skewed
    # as real ones are (the first in each array is the commonest: "Smith" ~4 %, the last
    # ~1 %); 5 % have no name at all, as after an email-only import. u1…u5 are independent
    # numbers in [0, 1).
    """
    INSERT INTO supporters (email, first_name, last_name, postcode, custom_fields, status,
                            soft_bounce_count, created_at, updated_at)
    SELECT regexp_replace(lower(CASE WHEN f IS NULL THEN 'supporter'
                                     WHEN mod(g, 3) = 0 THEN f || '.' || l
                                     WHEN mod(g, 3) = 1 THEN left(f, 1) || l
                                     ELSE f || '_' || left(l, 3) END), '[^a-z._]', '', 'g')
           || g || '@' || domain,
           f, l, postcode, '{}'::jsonb,
           (CASE WHEN u4 < 0.85 THEN 'subscribed' WHEN u4 < 0.95 THEN 'unsubscribed'
                 WHEN u4 < 0.98 THEN 'bounced' ELSE 'complained' END)::subscription_status,
           0, joined, joined
    FROM (
      SELECT g, joined,
             CASE WHEN u5 >= 0.05 THEN (%(first_names)s::text[])
                  [1 + floor(cardinality(%(first_names)s::text[]) * power(u1, 1.3))::int] END AS f,
             CASE WHEN u5 >= 0.05 THEN (%(last_names)s::text[])
                  [1 + floor(cardinality(%(last_names)s::text[]) * power(u2, 1.3))::int] END AS l,
             (%(areas)s::text[])[1 + floor(cardinality(%(areas)s::text[]) * u3)::int]
               || (1 + mod(g, 20)) || ' ' || mod(g / 20, 10)
               || chr(65 + mod(g / 200, 26)) || chr(65 + mod(g / 5200, 26)) AS postcode,
             (%(domains)s::text[])[1 + floor(cardinality(%(domains)s::text[]) * u5 * u5)::int]
               AS domain,
             u4
      FROM (
        SELECT g, now() - (%(supporters)s - g) * interval '3 minutes' AS joined,
               (hashint8extended(g, 1) & 1048575) / 1048576.0 AS u1,
               (hashint8extended(g, 2) & 1048575) / 1048576.0 AS u2,
               (hashint8extended(g, 3) & 1048575) / 1048576.0 AS u3,
               (hashint8extended(g, 4) & 1048575) / 1048576.0 AS u4,
               (hashint8extended(g, 5) & 1048575) / 1048576.0 AS u5
        FROM generate_series(1, %(supporters)s) AS g
      ) AS hashed
    ) AS drawn
    """,
    """
    INSERT INTO lists (name, created_at)
    SELECT name, now() FROM unnest(%(list_names)s::text[]) AS name
    """,
    """
    INSERT INTO tags (name, created_at)
    SELECT name, now() FROM unnest(%(tag_names)s::text[]) AS name
    """,
    # Each list or tag holds its share of everyone, chosen by a hash of (supporter, group).
    """
    INSERT INTO list_memberships (list_id, supporter_id, created_at)
    SELECT l.id, s.id, s.created_at
    FROM unnest(%(list_names)s::text[], %(list_shares)s::float8[]) AS share(name, fraction)
    JOIN lists l ON l.name = share.name
    CROSS JOIN supporters s
    WHERE (hashint8extended(s.id, 100 + l.id) & 1048575) < share.fraction * 1048576
    """,
    """
    INSERT INTO supporter_tags (tag_id, supporter_id)
    SELECT t.id, s.id
    FROM unnest(%(tag_names)s::text[], %(tag_shares)s::float8[]) AS share(name, fraction)
    JOIN tags t ON t.name = share.name
    CROSS JOIN supporters s
    WHERE (hashint8extended(s.id, 200 + t.id) & 1048575) < share.fraction * 1048576
    """,
    """
    INSERT INTO mailings (name, subject, audience, status, total_recipients, batch_count,
                          created_at, updated_at, started_at, finished_at, frozen_at)
    SELECT 'Alert ' || m, 'Act now ' || m, '{}'::jsonb,
           (CASE WHEN m > %(mailings)s - 2 THEN 'sending' ELSE 'sent' END)::mailing_status,
           0, 1, now() - (%(mailings)s - m + 1) * interval '3 days',
           now(), now() - (%(mailings)s - m + 1) * interval '3 days',
           CASE WHEN m > %(mailings)s - 2 THEN NULL
                ELSE now() - (%(mailings)s - m + 1) * interval '3 days' + interval '2 hours' END,
           now()
    FROM generate_series(1, %(mailings)s) AS m
    """,
    # Two scheduled mailings besides, with no deliveries yet.
    """
    INSERT INTO mailings (name, subject, audience, status, total_recipients, batch_count,
                          created_at, updated_at, scheduled_at)
    SELECT 'Scheduled ' || s, 'Soon', '{}'::jsonb, 'scheduled', 0, 0, now(), now(),
           now() + s * interval '1 day'
    FROM generate_series(1, 2) AS s
    """,
    """
    INSERT INTO mailing_links (mailing_id, position, url, is_honeypot)
    SELECT id, p, 'https://act.example.org/' || p, p = 0
    FROM mailings, generate_series(0, %(links)s) AS p WHERE status <> 'scheduled'
    """,
    """
    INSERT INTO deliveries (mailing_id, supporter_id, batch_no, status, attempts, sent_at)
    SELECT m.id, s.id, 0,
           (CASE WHEN m.status = 'sending' AND mod(s.id, 10) = 0 THEN 'queued'
                 WHEN mod(s.id * 7, 100) = 3 THEN 'failed'
                 ELSE 'sent' END)::delivery_status,
           1, m.started_at + interval '1 hour'
    FROM supporters s
    JOIN mailings m ON m.id = mod(s.id, %(mailings)s) + 1
    """,
    """
    UPDATE mailings m SET total_recipients = d.n
    FROM (SELECT mailing_id, count(*) AS n FROM deliveries GROUP BY mailing_id) d
    WHERE d.mailing_id = m.id
    """,
    # h = a stable pseudo-random number in 0..999 per delivery.
    """
    CREATE TEMPORARY TABLE bench_hash AS
    SELECT d.id, d.mailing_id, d.sent_at, mod(hashint8(d.id)::bigint + 2147483648, 1000) AS h
    FROM deliveries d WHERE d.status = 'sent'
    """,
    """
    INSERT INTO tracking_events (kind, mailing_id, delivery_id, link_position, occurred_at,
                                 user_agent_class, machine, machine_reason)
    SELECT 'open'::tracking_event_kind, mailing_id, id, NULL::int,
           sent_at + mod(h, 48) * interval '1 hour', 'browser', false, NULL
    FROM bench_hash WHERE h < 300
    UNION ALL
    SELECT 'open', mailing_id, id, NULL, sent_at + interval '1 minute', 'proxy', true,
           'privacy proxy'
    FROM bench_hash WHERE h >= 200 AND h < 600
    UNION ALL
    SELECT 'click', mailing_id, id, 1 + mod(h, %(links)s::int),
           sent_at + mod(h, 48) * interval '1 hour', 'browser', false, NULL
    FROM bench_hash WHERE h < 60
    UNION ALL
    SELECT 'click', mailing_id, id, 0, sent_at + interval '2 minutes', 'bot', true, 'honeypot'
    FROM bench_hash WHERE h >= 590 AND h < 600
    UNION ALL
    SELECT 'action', mailing_id, id, NULL, sent_at + mod(h, 48) * interval '1 hour', 'browser',
           false, NULL
    FROM bench_hash WHERE h < 10
    UNION ALL
    SELECT 'unsubscribe', mailing_id, id, NULL, sent_at + interval '3 hours', 'browser', false,
           NULL
    FROM bench_hash WHERE h >= 900 AND h < 903
    """,
    """
    INSERT INTO bounce_events (kind, source, mailing_id, delivery_id, occurred_at)
    SELECT 'hard', 'smtp', mailing_id, id, sent_at + interval '5 minutes'
    FROM bench_hash WHERE h >= 950 AND h < 955
    """,
]


# Lets the event counts read the index alone, already in (mailing, kind, delivery) order.
PROPOSED_INDEX_NAME = "ix_tracking_events_mailing_kind_delivery"
PROPOSED_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {PROPOSED_INDEX_NAME} "
    "ON tracking_events (mailing_id, kind, delivery_id) INCLUDE (machine)"
)


def percentile_95(timings: list[float]) -> float:
    ordered = sorted(timings)
    return ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]


def sign_in(client) -> None:
    page = client.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = client.post(
        "/staff/login",
        data={"email": "analyst@bench.example.org", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def statements_of(client, path: str) -> list[tuple[str, object]]:
    """Return the SQL one request for the page runs (the sign-in's user lookup included)."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        response = client.get(path)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert response.status_code == 200, (path, response.status_code)
    return seen


def time_page(client, path: str, runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        response.get_data()
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return timings


def time_bare_sql(statements: list[tuple[str, object]], runs: int) -> list[float]:
    """Replay the page's statements on one plain DBAPI connection, fetching every row."""
    timings = []
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        for _ in range(runs):
            started = time.perf_counter()
            for statement, parameters in statements:
                cursor.execute(statement, parameters)
                if cursor.description is not None:
                    cursor.fetchall()
            timings.append((time.perf_counter() - started) * 1000)
            connection.rollback()
    finally:
        connection.close()
    return timings


@dataclass(frozen=True)
class Page:
    label: str
    path: str
    target_ms: int | None  # None: the issue sets no target for this page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument(
        "--supporters", type=int, default=int(os.environ.get("BENCH_SUPPORTERS", 1_000_000))
    )
    parser.add_argument("--mailings", type=int, default=50)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--try-index",
        action="store_true",
        help=f"then add {PROPOSED_INDEX_NAME} (if missing) and time the pages again",
    )
    parser.add_argument(
        "--try-unprepared",
        action="store_true",
        help="then time again with psycopg's server-side prepared statements off",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (also BENCH_QUICK=1)")
    args = parser.parse_args()
    if args.quick or os.environ.get("BENCH_QUICK") == "1":
        parser.set_defaults(**QUICK)  # explicit options still win
        args = parser.parse_args()

    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    url = args.admin_url.rsplit("/", 1)[0] + "/" + DB_NAME
    settings = replace(
        Settings.from_env({}),
        database_url=normalise_database_url(url),
        redis_url=REDIS_URL,
        staff_login_rate="1000/minute",
    )
    app = create_app(settings)
    with app.app_context():
        from flask_migrate import upgrade

        from app.campaigns.models import Campaign, CampaignKind, CampaignStatus

        upgrade()
        started = time.perf_counter()
        fill(args.supporters, args.mailings)
        now = utcnow()
        for n in range(3):
            db.session.add(
                Campaign(
                    title=f"Campaign {n}",
                    slug=f"campaign-{n}",
                    kind=CampaignKind.LETTER,
                    status=CampaignStatus.OPEN,
                    deadline=now + timedelta(days=n + 1, hours=5),
                    timezone="Europe/London",
                )
            )
        create_user("analyst@bench.example.org", Role.ANALYST, password=PASSWORD)
        # The pages read the rollups, which live recording keeps; a fill by SQL has to rebuild.
        rebuild()
        db.session.commit()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            deliveries = conn.execute("SELECT count(*) FROM deliveries").fetchone()[0]
            events = conn.execute("SELECT count(*) FROM tracking_events").fetchone()[0]
            memberships = conn.execute("SELECT count(*) FROM list_memberships").fetchone()[0]
            taggings = conn.execute("SELECT count(*) FROM supporter_tags").fetchone()[0]
            newest_sent = conn.execute(
                "SELECT max(id) FROM mailings WHERE status = 'sent'"
            ).fetchone()[0]
            samples = search_samples(conn, args.supporters)
        print(
            f"filled in {time.perf_counter() - started:.1f}s: {args.supporters:,} supporters "
            f"({memberships:,} list memberships, {taggings:,} tags), {args.mailings} mailings, "
            f"{deliveries:,} deliveries, {events:,} tracking events"
        )

        client = app.test_client()
        sign_in(client)
        pages = [
            Page("dashboard", "/staff/", DASHBOARD_TARGET_MS),
            Page("dashboard live fragment", "/staff/live", DASHBOARD_TARGET_MS),
            Page("results list", "/staff/results/", None),
            Page("one mailing's results", f"/staff/results/{newest_sent}", None),
            # Each list's members and subscribed members: the counters of migration 0015.
            Page("lists", "/staff/supporters/lists", None),
            *supporters_pages(client, samples),
        ]
        results = time_pages(client, pages, args.runs)
        if args.try_index:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(PROPOSED_INDEX)
                conn.execute("VACUUM ANALYZE tracking_events")
            print(f"-- again, with {PROPOSED_INDEX_NAME}")
            results = time_pages(client, pages, args.runs)
        print(verdict_line(results, args.supporters, args.runs))
        db.session.remove()
    if args.try_unprepared:
        # psycopg prepares a statement after its 5th run on a connection; PostgreSQL then may
        # switch to one generic plan for every parameter: a LIKE prefix it cannot see, a list
        # of any size. prepare_threshold=None keeps every statement planned for its values.
        options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
        unprepared = create_app(
            settings,
            {
                "SQLALCHEMY_ENGINE_OPTIONS": {
                    **options,
                    "connect_args": {**options.get("connect_args", {}), "prepare_threshold": None},
                }
            },
        )
        with unprepared.app_context():
            print("-- again, with prepare_threshold=None (no server-side prepared statements)")
            client = unprepared.test_client()
            sign_in(client)
            print(verdict_line(time_pages(client, pages, args.runs), args.supporters, args.runs))
            db.session.remove()


def fill(supporters: int, mailings: int) -> None:
    parameters = {
        "supporters": supporters,
        "mailings": mailings,
        "links": LINKS,
        "first_names": FIRST_NAMES,
        "last_names": LAST_NAMES,
        "areas": POSTCODE_AREAS,
        "domains": DOMAINS,
        "list_names": [name for name, _ in LISTS],
        "list_shares": [share for _, share in LISTS],
        "tag_names": [name for name, _ in TAGS],
        "tag_shares": [share for _, share in TAGS],
    }
    with db.engine.begin() as conn:
        for statement in FILL_SQL:
            conn.exec_driver_sql(statement, parameters)


def search_samples(conn, supporters: int) -> dict[str, str]:
    """Pick what staff would type from the data itself, so each search finds someone."""
    middle = supporters // 2
    email, first, last, postcode = conn.execute(
        "SELECT email, first_name, last_name, postcode FROM supporters "
        "WHERE id >= %s AND first_name IS NOT NULL AND mod(id, 3) = 0 ORDER BY id LIMIT 1",
        (middle,),
    ).fetchone()
    rare_last = conn.execute(
        "SELECT last_name FROM supporters WHERE last_name IS NOT NULL "
        "GROUP BY last_name ORDER BY count(*), last_name LIMIT 1"
    ).fetchone()[0]
    ids = dict(conn.execute("SELECT name, id FROM lists").fetchall())
    ids |= dict(conn.execute("SELECT name, id FROM tags").fetchall())
    return {
        "email": email,
        "email prefix": email.split(".")[0] + "." + last.lower()[:2],  # "amira.kh"
        "common last name prefix": LAST_NAMES[0].lower()[:4],  # the commonest name: "smit"
        "rare last name prefix": rare_last.lower()[:5],
        "first last": f"{first} {last}".lower(),
        "postcode": postcode.split(" ")[0] + " " + postcode.split(" ")[1][0],  # "SW12 4"
        "big list": str(ids[LISTS[0][0]]),
        "small list": str(ids[LISTS[-1][0]]),
        "big tag": str(ids[TAGS[1][0]]),
        "small tag": str(ids[TAGS[-1][0]]),
        "middle id": str(middle),
    }


def supporters_pages(client, samples: dict[str, str]) -> list[Page]:
    """The directory's pages: the list, its next pages, and the searches staff make."""

    def page(label: str, **args: str) -> Page:
        return Page(
            f"supporters: {label}",
            "/staff/supporters/" + ("?" + urlencode(args) if args else ""),
            SUPPORTERS_TARGET_MS,
        )

    common = samples["common last name prefix"]
    first_pages = [
        page("first page"),
        page(f"exact email {samples['email']}", q=samples["email"]),
        page(f"email prefix {samples['email prefix']!r}", q=samples["email prefix"]),
        page(f"last name prefix {common!r} (commonest)", q=common),
        page(
            f"last name prefix {samples['rare last name prefix']!r} (rarest)",
            q=samples["rare last name prefix"],
        ),
        page(f"first last {samples['first last']!r}", q=samples["first last"]),
        page(f"postcode {samples['postcode']!r}", q=samples["postcode"]),
        page("one letter 's'", q="s"),
        page(f"list {LISTS[0][0]} ({LISTS[0][1]:.0%})", list=samples["big list"]),
        page(f"list {LISTS[-1][0]} ({LISTS[-1][1]:.1%})", list=samples["small list"]),
        page(f"tag {TAGS[1][0]} ({TAGS[1][1]:.0%})", tag=samples["big tag"]),
        page(f"tag {TAGS[-1][0]} ({TAGS[-1][1]:.2%})", tag=samples["small tag"]),
        page("status bounced", status="bounced"),
        page(f"{common!r} + list {LISTS[0][0]}", q=common, list=samples["big list"]),
        page(f"{common!r} + tag {TAGS[-1][0]}", q=common, tag=samples["small tag"]),
        page(f"{common!r} + status complained", q=common, status="complained"),
    ]
    next_pages = [
        page("next page (?after=)", after=next_after(client, first_pages[0].path)),
        page("a page halfway down (?after=)", after=samples["middle id"]),
        page(f"next page of {common!r}", q=common, after=next_after(client, first_pages[3].path)),
        page(
            f"next page of list {LISTS[0][0]}",
            list=samples["big list"],
            after=next_after(client, first_pages[8].path),
        ),
    ]
    return first_pages[:1] + next_pages[:2] + first_pages[1:] + next_pages[2:]


def next_after(client, path: str) -> str:
    """The ?after= of the page's "Next page" link, as a person would follow it."""
    found = re.search(r'after=(\d+)" rel="next"', client.get(path).get_data(as_text=True))
    assert found, f"{path} has no next page"
    return found.group(1)


@dataclass(frozen=True)
class Result:
    page: Page
    server_p95: float

    @property
    def over(self) -> bool:
        return self.page.target_ms is not None and self.server_p95 > self.page.target_ms


def time_pages(client, pages: list[Page], runs: int) -> list[Result]:
    width = max(len(page.label) for page in pages)
    print(
        f"{'page':{width}}  SQL  server ms: min  median     p95"
        "   bare SQL: min  median     p95  target"
    )
    results = []
    for page in pages:
        client.get(page.path)  # warm the caches and the template
        statements = statements_of(client, page.path)
        server = time_page(client, page.path, runs)
        bare = time_bare_sql(statements, runs)
        result = Result(page, percentile_95(server))
        verdict = (
            "  (none)"
            if page.target_ms is None
            else f"{page.target_ms:5d} {'OVER' if result.over else 'OK'}"
        )
        print(
            f"{page.label:{width}}  {len(statements):3d}  {figures(server)}  "
            f"        {figures(bare)}  {verdict}"
        )
        results.append(result)
    return results


def figures(timings: list[float]) -> str:
    return f"{min(timings):9.1f} {statistics.median(timings):7.1f} {percentile_95(timings):7.1f}"


def verdict_line(results: list[Result], supporters: int, runs: int) -> str:
    targeted = [r for r in results if r.page.target_ms is not None]
    over = [r for r in targeted if r.over]
    detail = "; ".join(
        f"{r.page.label} p95 {r.server_p95:.0f} ms > {r.page.target_ms} ms" for r in over
    )
    return (
        f"summary: {supporters:,} supporters, {runs} runs a page: "
        f"{len(targeted) - len(over)} of {len(targeted)} pages within target"
        + (f", OVER: {detail}" if over else "")
        + (" (the targets are set for 1,000,000 supporters)" if supporters < 1_000_000 else "")
    )


if __name__ == "__main__":
    main()
