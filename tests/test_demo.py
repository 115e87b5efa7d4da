from sqlalchemy import func, select

from app.demo import (
    SEGMENT_NAME,
    SUPPORTER_COUNT,
    build_demo_supporters,
    demo_counts,
    load_demo_data,
)
from app.supporters.models import (
    MailingList,
    Segment,
    SubscriptionChange,
    SubscriptionStatus,
    Supporter,
    Tag,
)


def test_demo_supporters_are_deterministic():
    first = [p.row["email"] for p in build_demo_supporters(50)]
    assert first == [p.row["email"] for p in build_demo_supporters(50)]
    assert len(set(first)) == 50
    assert all(email.rsplit("@", 1)[1].startswith("example.") for email in first)


def test_loading_twice_adds_nothing_the_second_time(db_session):
    first = load_demo_data(db_session)
    counts = demo_counts(db_session)
    second = load_demo_data(db_session)

    assert first.supporters == SUPPORTER_COUNT and first.lists == 3 and first.tags == 3
    assert first.segments == 1 and first.memberships > 0 and first.supporter_tags > 0
    assert all(value == 0 for value in vars(second).values())
    assert demo_counts(db_session) == counts
    assert counts["supporters"] == SUPPORTER_COUNT


def test_demo_data_has_lists_tags_segment_and_custom_field(db_session):
    load_demo_data(db_session)
    lists = set(db_session.scalars(select(MailingList.name)))
    assert {"Urgent Action Network", "Refugee and Migrant Rights", "Newsletter"} <= lists
    tags = {tag.name: tag.id for tag in db_session.scalars(select(Tag))}
    assert {"volunteer", "donor", "letter-writer"} <= set(tags)

    segment = db_session.scalar(select(Segment).where(Segment.name == SEGMENT_NAME))
    network = db_session.scalar(
        select(MailingList).where(MailingList.name == "Urgent Action Network")
    )
    assert segment.definition == {"include_lists": [network.id], "exclude_tags": [tags["donor"]]}

    supporter = db_session.scalar(select(Supporter).order_by(Supporter.id).limit(1))
    assert supporter.custom_fields["town"]
    countries = db_session.scalar(select(func.count(func.distinct(Supporter.country))))
    assert countries >= 10


def test_suppressed_supporters_have_their_consent_history(db_session):
    load_demo_data(db_session)
    by_status = dict(
        db_session.execute(select(Supporter.status, func.count()).group_by(Supporter.status)).all()
    )
    for status in (SubscriptionStatus.UNSUBSCRIBED, SubscriptionStatus.BOUNCED):
        assert by_status.get(status, 0) > 0

    bounced = db_session.scalar(
        select(Supporter).where(Supporter.status == SubscriptionStatus.BOUNCED).limit(1)
    )
    history = [(c.old_status, c.new_status, c.channel) for c in bounced.history]
    assert history == [
        (None, SubscriptionStatus.SUBSCRIBED, "import"),
        (SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.BOUNCED, "bounce"),
    ]
    # Every supporter, suppressed or not, has a sign-up record.
    signed_up = db_session.scalar(
        select(func.count(func.distinct(SubscriptionChange.supporter_id)))
    )
    assert signed_up == SUPPORTER_COUNT


def test_a_changed_status_survives_a_reload(db_session):
    from app.supporters.services import change_status

    load_demo_data(db_session)
    bounced = db_session.scalar(
        select(Supporter).where(Supporter.status == SubscriptionStatus.BOUNCED).limit(1)
    )
    change_status(bounced, SubscriptionStatus.SUBSCRIBED, channel="api", actor="test")
    db_session.flush()

    load_demo_data(db_session)
    db_session.refresh(bounced)
    assert bounced.status == SubscriptionStatus.SUBSCRIBED
