import re
from pathlib import Path

from sqlalchemy import func, select

from app.demo import (
    SEGMENT_NAME,
    SUPPORTER_COUNT,
    build_demo_supporters,
    demo_counts,
    load_demo_data,
)
from app.extensions import db
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


# Domains nobody can own (RFC 2606, RFC 6761): mail to them never reaches a person.
RESERVED_DOMAINS = ("example.org", "example.com", "example.net")
RESERVED_TLDS = ("test", "example", "invalid", "localhost")
EMAIL_LIKE = re.compile(r"[\w.%+'-]+@([\w-]+(?:\.[\w-]+)+)")


def is_reserved(domain: str) -> bool:
    domain = domain.lower().rstrip(".")
    return domain.rpartition(".")[2] in RESERVED_TLDS or any(
        domain == reserved or domain.endswith("." + reserved) for reserved in RESERVED_DOMAINS
    )


def test_reserved_domain_check():
    assert is_reserved("example.org") and is_reserved("lists.example.net")
    assert is_reserved("ice.example") and is_reserved("clarion.localhost")
    assert not is_reserved("ice.dhs.gov") and not is_reserved("notexample.org")


def test_every_address_in_the_demo_is_on_a_reserved_domain(app):
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    found = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(table.select()):
            found += [
                (table.name, address.group(0))
                for value in row
                if value is not None
                for address in EMAIL_LIKE.finditer(str(value))
            ]
    tables = {name for name, _ in found}
    assert {"supporters", "campaign_targets"} <= tables, tables  # the scan sees the demo rows
    assert [(name, a) for name, a in found if not is_reserved(a.rpartition("@")[2])] == []


def test_demo_mail_templates_name_no_real_address():
    root = Path(__file__).resolve().parents[1] / "templates" / "emails" / "demo_28_children"
    for path in root.iterdir():
        for address in EMAIL_LIKE.finditer(path.read_text(encoding="utf-8")):
            assert is_reserved(address.group(1)), (path.name, address.group(0))
