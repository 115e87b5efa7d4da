"""List member counts: the counters PostgreSQL's triggers keep agree with counting every membership.

member_counts() reads the counters (migration 0015); count_list_members() is the plain GROUP BY
over memberships and may_be_mailed(), the definition the counters must match. Every way a count
can change is checked against it: the API, the staff app, imports, bounces and complaints,
erasure, list deletion, single statements that touch many rows, random sequences of all of
these, and two transactions racing on one supporter.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from app.auth.accounts import create_user
from app.auth.models import Role
from app.extensions import db
from app.mailings.feedback.bounces import record_bounce
from app.privacy import erase_supporter
from app.supporters import groups, services
from app.supporters.importer import import_file
from app.supporters.models import (
    ListMemberCount,
    ListMembership,
    MailingList,
    SubscriptionStatus,
    Supporter,
)
from app.supporters.services import count_list_members, member_counts
from tests.factories import make_list, make_supporter, make_supporters
from tests.staff.conftest import PASSWORD, StaffClient

STATUSES = list(SubscriptionStatus)
_emails = itertools.count()


def assert_exact() -> dict[int, tuple[int, int]]:
    """Check the counters against the GROUP BY, and return the counts."""
    db.session.flush()
    counted = count_list_members()
    assert member_counts() == counted
    return counted


def new_supporter(status: SubscriptionStatus = SubscriptionStatus.SUBSCRIBED, lists=()) -> int:
    supporter = Supporter(email=f"counted{next(_emails)}@example.org", status=status)
    supporter.custom_fields = {}
    supporter.lists = list(lists)
    db.session.add(supporter)
    db.session.flush()
    return supporter.id


def set_status(supporter_id: int, status: SubscriptionStatus) -> None:
    services.change_status(db.session.get(Supporter, supporter_id), status, channel="test")
    db.session.flush()


# --- the counters are what the pages read --------------------------------------------------


def test_member_counts_are_read_from_the_counters_not_counted():
    newsletter = make_list("Newsletter")
    make_supporters(3, mailing_list=newsletter)
    new_supporter(SubscriptionStatus.BOUNCED, [newsletter])
    assert assert_exact()[newsletter.id] == (4, 3)
    stored = db.session.execute(
        select(func.sum(ListMemberCount.members), func.sum(ListMemberCount.subscribed)).where(
            ListMemberCount.list_id == newsletter.id
        )
    ).one()
    assert tuple(stored) == (4, 3)
    # Nudge the counters by hand: member_counts() follows them, the GROUP BY does not.
    db.session.execute(
        text("UPDATE list_member_counts SET members = members + 10 WHERE list_id = :id"),
        {"id": newsletter.id},
    )
    assert member_counts()[newsletter.id] == (14, 3)
    assert count_list_members()[newsletter.id] == (4, 3)


def test_a_list_whose_members_all_left_has_no_counts():
    empty = make_list("Emptied")
    (only,) = make_supporters(1, mailing_list=empty)
    services.remove_list_member(empty, only)
    assert empty.id not in assert_exact()
    assert groups.with_member_counts(empty).member_count == 0


@pytest.mark.parametrize(
    ("before", "after"), [(b, a) for b in STATUSES for a in STATUSES if a != b]
)
def test_every_status_change_moves_subscribed_as_may_be_mailed_says(before, after):
    mailing_list = make_list("Statuses")
    supporter_id = new_supporter(before, [mailing_list])
    new_supporter(SubscriptionStatus.SUBSCRIBED, [mailing_list])
    assert_exact()
    set_status(supporter_id, after)
    subscribed = 1 + (after == SubscriptionStatus.SUBSCRIBED)
    assert assert_exact()[mailing_list.id] == (2, subscribed)


# --- the API --------------------------------------------------------------------------------


def test_api_member_changes_and_list_deletion_keep_counts(client, api_token):
    headers = api_token("admin")
    list_id = client.post("/api/v1/lists", json={"name": "API list"}, headers=headers).get_json()[
        "id"
    ]
    people = [new_supporter() for _ in range(3)] + [new_supporter(SubscriptionStatus.COMPLAINED)]
    db.session.commit()

    added = client.post(
        f"/api/v1/lists/{list_id}/members", json={"supporter_ids": people}, headers=headers
    )
    assert added.get_json()["added"] == 4
    one = client.get(f"/api/v1/lists/{list_id}", headers=headers).get_json()
    assert (one["member_count"], one["subscribed_count"]) == (4, 3)
    assert assert_exact()[list_id] == (4, 3)

    for leaving in (people[0], people[3]):
        removed = client.delete(f"/api/v1/lists/{list_id}/members/{leaving}", headers=headers)
        assert removed.status_code == 204
    page = client.get("/api/v1/lists", headers=headers).get_json()["items"]
    assert [(i["member_count"], i["subscribed_count"]) for i in page] == [(2, 2)]
    assert assert_exact()[list_id] == (2, 2)

    # A resubscription with consent, and an unsubscribe, through PATCH.
    consent = {"channel": "web_form", "detail": "opted back in"}
    assert (
        client.patch(
            f"/api/v1/supporters/{people[3]}",
            json={"status": "subscribed", "consent": consent, "lists": ["API list"]},
            headers=headers,
        ).status_code
        == 200
    )
    assert assert_exact()[list_id] == (3, 3)
    client.patch(
        f"/api/v1/supporters/{people[1]}", json={"status": "unsubscribed"}, headers=headers
    )
    assert assert_exact()[list_id] == (3, 2)

    assert client.delete(f"/api/v1/supporters/{people[2]}", headers=headers).status_code == 204
    assert assert_exact()[list_id] == (2, 1)

    assert client.delete(f"/api/v1/lists/{list_id}", headers=headers).status_code == 204
    assert list_id not in assert_exact()
    stored = select(func.count()).select_from(ListMemberCount)
    assert db.session.scalar(stored.where(ListMemberCount.list_id == list_id)) == 0


def test_api_upsert_with_lists_counts_the_new_supporter(client, api_token):
    headers = api_token("admin")
    mailing_list = make_list("Sign-ups")
    db.session.commit()
    for email, status in (("new1@example.org", "subscribed"), ("new2@example.org", "bounced")):
        response = client.post(
            "/api/v1/supporters",
            json={"email": email, "status": status, "lists": ["Sign-ups"]},
            headers=headers,
        )
        assert response.status_code in (200, 201), response.get_json()
    assert assert_exact()[mailing_list.id] == (2, 1)


# --- the staff app --------------------------------------------------------------------------


@pytest.fixture
def staff(app) -> Iterator[StaffClient]:
    """A staff client signed in as an admin (who may edit, unsubscribe, erase, delete lists)."""
    app.test_client_class = StaffClient
    try:
        client = app.test_client()
        client.sign_in(create_user("counts-admin@staff.example.org", Role.ADMIN, password=PASSWORD))
        yield client
    finally:
        app.test_client_class = None


def edit_lists(staff: StaffClient, supporter: Supporter, lists: list[MailingList]):
    response = staff.submit(
        f"/staff/supporters/{supporter.id}/edit",
        {
            "first_name": supporter.first_name or "",
            "last_name": supporter.last_name or "",
            "postcode": supporter.postcode or "",
            "tags": "",
            "lists": [str(m.id) for m in lists],
            "custom_fields-0-name": "town",
            "custom_fields-0-value": "Springfield",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    db.session.expire_all()


def test_staff_edits_unsubscribes_erases_and_deletes_lists_with_exact_counts(staff):
    first, second = make_list("First"), make_list("Second")
    jane = make_supporter("jane@example.org")
    john = make_supporter("john@example.org", lists=["First"])
    db.session.commit()

    edit_lists(staff, jane, [first, second])
    assert assert_exact() == {first.id: (2, 2), second.id: (1, 1)}
    edit_lists(staff, db.session.get(Supporter, jane.id), [second])
    assert assert_exact() == {first.id: (1, 1), second.id: (1, 1)}

    assert staff.submit(f"/staff/supporters/{jane.id}/unsubscribe").status_code == 302
    assert assert_exact() == {first.id: (1, 1), second.id: (1, 0)}
    page = staff.get("/staff/supporters/lists").get_data(as_text=True)
    assert "First" in page and "Second" in page

    erase = staff.submit(f"/staff/supporters/{john.id}/erase", {"confirm_email": john.email})
    assert erase.status_code == 302
    assert assert_exact() == {second.id: (1, 0)}

    assert staff.submit(f"/staff/supporters/lists/{second.id}/delete").status_code == 302
    assert assert_exact() == {}


# --- imports, bounces, erasure --------------------------------------------------------------


def test_imports_count_new_and_existing_supporters_once(settings, tmp_path):
    mailing_list = make_list("Imported")
    already = make_supporter("already@example.org", lists=["Imported"])
    make_supporter("elsewhere@example.org")
    set_status(already.id, SubscriptionStatus.UNSUBSCRIBED)
    db.session.commit()
    csv = tmp_path / "people.csv"
    csv.write_text(
        "email,status\n"
        "already@example.org,subscribed\n"  # existing: stays unsubscribed, already a member
        "elsewhere@example.org,\n"  # existing, joins the list
        "fresh@example.org,\n"
        "gone@example.org,unsubscribed\n"
    )
    done = import_file(csv, list_name="Imported", settings=settings, chunk_size=2)
    assert done.error is None
    assert assert_exact()[mailing_list.id] == (4, 2)
    # The same file again changes nothing.
    import_file(csv, list_name="Imported", settings=settings)
    assert assert_exact()[mailing_list.id] == (4, 2)


def test_bounces_and_complaints_take_people_off_subscribed():
    mailing_list = make_list("Bounced")
    people = [make_supporter(f"b{n}@example.org", lists=["Bounced"]) for n in range(3)]
    for person, kind in zip(people, ("hard", "complaint", "soft"), strict=True):
        record_bounce(kind=kind, source="test", email=person.email, soft_bounce_limit=3)
    # The soft bounce is under its limit; a second hard bounce changes nothing more.
    record_bounce(kind="hard", source="test", email=people[0].email, soft_bounce_limit=3)
    assert assert_exact()[mailing_list.id] == (3, 1)


def test_erasing_a_member_of_several_lists():
    lists = [make_list(f"Erase {n}") for n in range(3)]
    subscribed = new_supporter(SubscriptionStatus.SUBSCRIBED, lists)
    unsubscribed = new_supporter(SubscriptionStatus.UNSUBSCRIBED, lists[:2])
    assert_exact()
    erase_supporter(db.session.get(Supporter, subscribed))
    erase_supporter(db.session.get(Supporter, unsubscribed))
    assert assert_exact() == {}


# --- single statements over many rows -------------------------------------------------------


def test_statements_touching_many_rows_are_counted_once_each():
    big, small = make_list("Big"), make_list("Small")
    ids = make_supporters(40)
    db.session.execute(
        text(
            "INSERT INTO list_memberships (list_id, supporter_id, created_at) "
            "SELECT :big, id, now() FROM supporters WHERE id = ANY(:ids) "
            "UNION ALL SELECT :small, id, now() FROM supporters WHERE id = ANY(:some)"
        ),
        {"big": big.id, "small": small.id, "ids": ids, "some": ids[:10]},
    )
    assert assert_exact() == {big.id: (40, 40), small.id: (10, 10)}
    db.session.execute(
        text("UPDATE supporters SET status = 'bounced' WHERE id = ANY(:ids)"), {"ids": ids[::2]}
    )
    assert assert_exact() == {big.id: (40, 20), small.id: (10, 5)}
    # Moving memberships from one list to another (an UPDATE of the key).
    db.session.execute(
        text(
            "UPDATE list_memberships SET list_id = :small "
            "WHERE list_id = :big AND supporter_id = ANY(:ids)"
        ),
        {"big": big.id, "small": small.id, "ids": ids[10:20]},
    )
    assert assert_exact() == {big.id: (30, 15), small.id: (20, 10)}
    # An update that touches rows but no status or key moves nothing.
    db.session.execute(text("UPDATE supporters SET first_name = 'Same'"))
    db.session.execute(text("UPDATE list_memberships SET created_at = now()"))
    assert assert_exact() == {big.id: (30, 15), small.id: (20, 10)}
    db.session.execute(text("DELETE FROM supporters WHERE id = ANY(:ids)"), {"ids": ids[:5]})
    # They were in both lists; three of the five had bounced.
    assert assert_exact() == {big.id: (25, 13), small.id: (15, 8)}
    db.session.execute(text("DELETE FROM list_memberships WHERE list_id = :big"), {"big": big.id})
    assert assert_exact() == {small.id: (15, 8)}
    db.session.execute(text("TRUNCATE list_memberships"))
    assert assert_exact() == {}
    assert db.session.scalar(select(func.count()).select_from(ListMemberCount)) == 0


# --- random sequences of every operation ----------------------------------------------------

LISTS, PEOPLE = 3, 5
person = st.integers(0, PEOPLE - 1)
a_list = st.integers(0, LISTS - 1)
status = st.sampled_from(STATUSES)
operations = st.one_of(
    st.tuples(st.just("add"), a_list, st.lists(person, min_size=1, max_size=PEOPLE)),
    st.tuples(st.just("remove"), a_list, person),
    st.tuples(st.just("status"), person, status),
    st.tuples(st.just("statuses"), st.lists(person, min_size=1, max_size=PEOPLE), status),
    st.tuples(st.just("regroup"), person, st.lists(a_list, max_size=LISTS)),
    st.tuples(st.just("move"), a_list, a_list, person),
    st.tuples(st.just("empty"), a_list),
    st.tuples(st.just("erase"), person),
    st.tuples(st.just("delete_people"), st.lists(person, min_size=1, max_size=PEOPLE)),
    st.tuples(st.just("delete_list"), a_list),
    st.tuples(st.just("sign_up"), st.lists(a_list, max_size=LISTS), status),
)


class World:
    """A few lists and supporters, and the operations the app and SQL perform on them."""

    def __init__(self, statuses: list[SubscriptionStatus], memberships: set[tuple[int, int]]):
        self.lists = [make_list(f"Random {next(_emails)}").id for _ in range(LISTS)]
        self.people = [new_supporter(s) for s in statuses]
        for list_index, person_index in memberships:
            db.session.add(
                ListMembership(
                    list_id=self.lists[list_index], supporter_id=self.people[person_index]
                )
            )

    def supporter(self, index: int) -> Supporter | None:
        return db.session.get(Supporter, self.people[index])

    def mailing_list(self, index: int) -> MailingList | None:
        return db.session.get(MailingList, self.lists[index])

    def apply(self, op: tuple) -> None:
        handlers: dict[str, Callable] = {
            "add": self.add,
            "remove": self.remove,
            "status": self.status,
            "statuses": self.statuses,
            "regroup": self.regroup,
            "move": self.move,
            "empty": self.empty,
            "erase": self.erase,
            "delete_people": self.delete_people,
            "delete_list": self.delete_list,
            "sign_up": self.sign_up,
        }
        handlers[op[0]](*op[1:])
        db.session.flush()
        db.session.expire_all()  # raw statements above change rows behind the ORM's back

    def add(self, list_index, person_indexes):
        if (mailing_list := self.mailing_list(list_index)) is not None:
            services.add_list_members(mailing_list, [self.people[i] for i in person_indexes])

    def remove(self, list_index, person_index):
        if (mailing_list := self.mailing_list(list_index)) is not None:
            services.remove_list_member(mailing_list, self.people[person_index])

    def status(self, person_index, new_status):
        if (supporter := self.supporter(person_index)) is not None:
            services.change_status(supporter, new_status, channel="test")

    def statuses(self, person_indexes, new_status):
        db.session.execute(
            text("UPDATE supporters SET status = :status WHERE id = ANY(:ids)"),
            {"status": new_status.value, "ids": [self.people[i] for i in person_indexes]},
        )

    def regroup(self, person_index, list_indexes):
        if (supporter := self.supporter(person_index)) is not None:
            wanted = [self.lists[i] for i in list_indexes if self.mailing_list(i) is not None]
            services.replace_groups(supporter, list_ids=wanted, tag_names=[])

    def move(self, from_index, to_index, person_index):
        db.session.execute(
            text(
                "UPDATE list_memberships SET list_id = :to "
                "WHERE list_id = :from AND supporter_id = :person AND NOT EXISTS ("
                "  SELECT FROM list_memberships WHERE list_id = :to AND supporter_id = :person)"
                " AND EXISTS (SELECT FROM lists WHERE id = :to)"
            ),
            {
                "from": self.lists[from_index],
                "to": self.lists[to_index],
                "person": self.people[person_index],
            },
        )

    def empty(self, list_index):
        db.session.execute(
            text("DELETE FROM list_memberships WHERE list_id = :id"),
            {"id": self.lists[list_index]},
        )

    def erase(self, person_index):
        if (supporter := self.supporter(person_index)) is not None:
            erase_supporter(supporter)

    def delete_people(self, person_indexes):
        # One statement: the memberships go by ON DELETE CASCADE, after the supporters (the
        # ORM's erase deletes them first, itself).
        db.session.execute(
            text("DELETE FROM supporters WHERE id = ANY(:ids)"),
            {"ids": [self.people[i] for i in person_indexes]},
        )

    def delete_list(self, list_index):
        if (mailing_list := self.mailing_list(list_index)) is not None:
            groups.delete_list(mailing_list)

    def sign_up(self, list_indexes, new_status):
        names = [m.name for i in list_indexes if (m := self.mailing_list(i)) is not None]
        services.upsert_supporter(
            {"email": f"random{next(_emails)}@example.org", "status": new_status, "lists": names},
            actor="test",
        )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    statuses=st.lists(status, min_size=PEOPLE, max_size=PEOPLE),
    memberships=st.sets(st.tuples(a_list, person), max_size=LISTS * PEOPLE),
    steps=st.lists(operations, min_size=1, max_size=12),
)
def test_random_operations_keep_the_counters_equal_to_the_group_by(statuses, memberships, steps):
    savepoint = db.session.begin_nested()  # each example starts from the same database
    try:
        world = World(statuses, memberships)
        assert_exact()
        for step in steps:
            world.apply(step)
            assert_exact()
    finally:
        savepoint.rollback()
        db.session.expire_all()


# --- two transactions at once ---------------------------------------------------------------

ADD = "INSERT INTO list_memberships (list_id, supporter_id, created_at) VALUES (:l, :s, now())"
REMOVE = "DELETE FROM list_memberships WHERE list_id = :l AND supporter_id = :s"
UNSUBSCRIBE = "UPDATE supporters SET status = 'unsubscribed' WHERE id = :s"


def waits_for_a_lock(engine, pid: int, timeout: float = 5.0) -> bool:
    with engine.connect() as watcher:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waiting = watcher.scalar(
                text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": pid},
            )
            if waiting:
                return True
            watcher.rollback()
            time.sleep(0.02)
    return False


@pytest.mark.integration
@pytest.mark.parametrize("membership_change", [ADD, REMOVE], ids=["add", "remove"])
@pytest.mark.parametrize("first", ["membership", "status"])
def test_a_membership_and_a_status_change_racing_are_both_counted(membership_change, first):
    """Each transaction would miss the other's uncommitted row; one must wait for the other."""
    engine = db.engine
    with engine.begin() as setup:
        list_id, other_list = (
            setup.scalar(
                text("INSERT INTO lists (name, created_at) VALUES (:n, now()) RETURNING id"),
                {"n": name},
            )
            for name in ("Race", "Race, other")
        )
        supporter_id = setup.scalar(
            text(
                "INSERT INTO supporters (email, custom_fields, status, soft_bounce_count, "
                "created_at, updated_at) VALUES ('race@example.org', '{}', 'subscribed', 0, "
                "now(), now()) RETURNING id"
            )
        )
        # A list the supporter stays in throughout: its subscribed count must move too.
        setup.execute(text(ADD), {"l": other_list, "s": supporter_id})
        if membership_change == REMOVE:
            setup.execute(text(ADD), {"l": list_id, "s": supporter_id})
    statements = {
        "membership": (membership_change, {"l": list_id, "s": supporter_id}),
        "status": (UNSUBSCRIBE, {"s": supporter_id}),
    }
    second_name = "status" if first == "membership" else "membership"
    with engine.connect() as one, engine.connect() as two:
        pid = two.scalar(text("SELECT pg_backend_pid()"))
        two.rollback()
        one.begin()
        one.execute(text(statements[first][0]), statements[first][1])
        errors: list[BaseException] = []

        def run_second():
            try:
                with two.begin():
                    two.execute(text(statements[second_name][0]), statements[second_name][1])
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        second = threading.Thread(target=run_second)
        second.start()
        assert waits_for_a_lock(engine, pid), "the second transaction did not wait for the first"
        one.commit()
        second.join(10)
        assert not second.is_alive() and not errors, errors
    expected = {other_list: (1, 0)} | ({list_id: (1, 0)} if membership_change == ADD else {})
    assert count_list_members() == expected
    assert member_counts() == expected


def test_large_statements_stay_linear_after_small_ones_planned_the_triggers():
    """plpgsql keeps each trigger query's first plan, made for one row; 10,000 must not be squared."""
    big = make_list("Planned small")
    ids = make_supporters(10_000)
    one = ids[:1]
    statements = [
        "INSERT INTO list_memberships SELECT :l, id, now() FROM supporters WHERE id = ANY(:ids)",
        "UPDATE list_memberships SET created_at = now() WHERE supporter_id = ANY(:ids)",
        "UPDATE supporters SET status = 'bounced' WHERE id = ANY(:ids)",
        "UPDATE supporters SET first_name = 'Planned' WHERE id = ANY(:ids)",
        "DELETE FROM list_memberships WHERE list_id = :l AND supporter_id = ANY(:ids)",
    ]
    for statement in statements:  # one row each: the plans plpgsql then keeps
        db.session.execute(text(statement), {"l": big.id, "ids": one})
    db.session.execute(
        text("UPDATE supporters SET status = 'subscribed' WHERE id = ANY(:ids)"), {"ids": one}
    )
    started = time.monotonic()
    for statement in statements:
        db.session.execute(text(statement), {"l": big.id, "ids": ids})
    # About half a second here; a nested loop of old rows against new ones takes over ten.
    assert time.monotonic() - started < 4
    assert assert_exact() == {}
