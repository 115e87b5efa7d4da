"""CSV import of supporters, on real PostgreSQL."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select

from app.extensions import db
from app.supporters.emails import email_hash, normalise_email
from app.supporters.importer import create_import, import_file, rejections_csv, run_import
from app.supporters.models import (
    CustomField,
    ErasedEmail,
    ImportRejection,
    ImportStatus,
    MailingList,
    SubscriptionChange,
    SubscriptionStatus,
    Supporter,
    SupporterImport,
    Tag,
)
from app.supporters.services import change_status

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def write_csv(tmp_path):
    def write(text: str | bytes, name: str = "people.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    return write


@pytest.fixture
def do_import(settings):
    def run(path, **options):
        return import_file(path, settings=settings, **options)

    return run


def supporter(email: str) -> Supporter | None:
    return db.session.scalar(select(Supporter).where(Supporter.email == email))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_good_file_creates_supporters_with_consent_history(write_csv, do_import):
    path = write_csv(
        "email,first_name,last_name,postcode,country,language,source\n"
        "ann@example.org,Ann,Lee,N1 9GU,gb,en-GB,petition\n"
        " Bob@Example.ORG ,Bob,,,,,\n"
    )
    result = do_import(path)
    assert result.status == ImportStatus.DONE, result.error
    assert (result.created_count, result.updated_count, result.unchanged_count) == (2, 0, 0)
    assert (result.processed_rows, result.total_rows, result.rejected_count) == (2, 2, 0)
    ann = supporter("ann@example.org")
    assert (ann.first_name, ann.last_name, ann.postcode, ann.country, ann.language) == (
        "Ann",
        "Lee",
        "N1 9GU",
        "GB",
        "en-gb",
    )
    assert ann.source == "petition" and ann.status == SubscriptionStatus.SUBSCRIBED
    assert [(h.old_status, h.new_status, h.channel, h.actor) for h in ann.history] == [
        (None, SubscriptionStatus.SUBSCRIBED, "import", f"import:{result.id}")
    ]
    assert supporter("bob@example.org").first_name == "Bob"


def test_excel_semicolons_and_bom(write_csv, do_import):
    path = write_csv("\ufeffEmail;Vorname;Land\r\nzoë@example.de;Zoë;de\r\n".encode())
    result = do_import(path)
    assert result.created_count == 1, result.error
    zoe = supporter("zoë@example.de")
    assert (zoe.first_name, zoe.country, zoe.custom_fields) == ("Zoë", "DE", {})


def test_delimiter_is_sniffed_outside_quotes(write_csv, do_import):
    path = write_csv('"Name, in full"\tE-mail\tnotes\n"Lee, Ann"\tann@example.org\ta;b;c\n')
    result = do_import(path)
    assert result.created_count == 1, result.error
    assert supporter("ann@example.org").custom_fields == {
        "name_in_full": "Lee, Ann",
        "notes": "a;b;c",
    }


def test_header_aliases_are_case_insensitive(write_csv, do_import):
    path = write_csv(
        "E-MAIL,Given Name,SURNAME,Zip,Country Code,Lang\nann@example.org,Ann,Lee,12345,us,fr\n"
    )
    do_import(path)
    ann = supporter("ann@example.org")
    assert (ann.first_name, ann.last_name, ann.postcode, ann.country, ann.language) == (
        "Ann",
        "Lee",
        "12345",
        "US",
        "fr",
    )
    assert ann.custom_fields == {}


def test_bad_emails_are_rejected_with_row_numbers_and_good_rows_kept(write_csv, do_import):
    path = write_csv(
        "email,first_name\n"
        "good@example.org,Good\n"
        "not-an-email,Bad\n"
        ",Empty\n"
        "a@b@example.org,Two ats\n"
        "x@example.test,Reserved\n"
        "fine@example.org,Fine\n"
    )
    result = do_import(path)
    assert (result.created_count, result.rejected_count) == (2, 4)
    rejections = db.session.scalars(
        select(ImportRejection).where(ImportRejection.import_id == result.id)
    ).all()
    by_row = {r.row_number: r for r in rejections}
    assert sorted(by_row) == [3, 4, 5, 6]
    assert by_row[3].reason.startswith("invalid email") and by_row[3].raw == "not-an-email,Bad"
    assert by_row[4].reason == "missing email"
    assert "special-use" in by_row[6].reason
    report = "".join(rejections_csv(result.id)).splitlines()
    assert report[0] == "row,reason,raw"
    assert report[1].startswith("3,invalid email")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,city\nAnn,Paris\n", "no email column"),
        ("", "empty"),
        ("\ufeff\r\n", "empty"),
        ("email,name\n", "no rows"),
        ("\ufeffemail\n".encode("utf-16"), "no rows"),  # UTF-16 is read; see test_import_encoding
    ],
)
def test_unusable_file_fails_and_writes_nothing(write_csv, do_import, content, message):
    result = do_import(write_csv(content), list_name="Never made", tag_names=["never"])
    assert result.status == ImportStatus.FAILED
    assert message in result.error
    assert count(Supporter) == 0 and count(MailingList) == 0 and count(Tag) == 0


def test_latin1_file_read_as_utf8_fails_naming_row_and_byte(write_csv, do_import):
    path = write_csv(
        "email,first_name\na@example.org,Ann\nb@example.org,Andr\xe9\n".encode("latin-1")
    )
    result = do_import(path, encoding="utf-8")
    assert result.status == ImportStatus.FAILED
    assert "not UTF-8" in result.error and "row 3" in result.error and "0xE9" in result.error
    assert count(Supporter) == 0


def test_embedded_newlines_and_row_numbers(write_csv, do_import):
    path = write_csv(
        'email,first_name,notes\na@example.org,Ann,"line one\nline two\r\nline three"\nbad,Bob,x\n'
    )
    result = do_import(path)
    assert result.created_count == 1 and result.rejected_count == 1
    assert supporter("a@example.org").custom_fields["notes"] == "line one line two  line three"
    rejection = db.session.scalar(select(ImportRejection))
    assert rejection.row_number == 3


def test_hostile_values_are_cleaned_or_rejected(write_csv, do_import):
    path = write_csv(
        "email,first_name,last_name,postcode,country\n"
        f"a@example.org,An\x00n\x07,{'L' * 5000},{'9' * 41},ZZ\n"
        "b@example.org\x00,Bob,,,\n"
        "c@example.org,Cy,Extra,1,GB,surprise\n"
        f"{'d' * 300}@example.org,Long,,,\n"
    )
    result = do_import(path)
    assert result.status == ImportStatus.DONE, result.error
    a = supporter("a@example.org")
    assert a.first_name == "Ann" and len(a.last_name) == 200
    assert a.postcode is None and a.country is None  # dropped, supporter still imported
    reasons = dict(
        db.session.execute(select(ImportRejection.row_number, ImportRejection.reason)).all()
    )
    assert sorted(reasons) == [3, 4, 5]
    assert "6 fields" in reasons[4]


def test_overlong_line_fails_cleanly(write_csv, do_import):
    result = do_import(write_csv("email\n" + "x" * (1024 * 1024 + 10) + "\n"))
    assert result.status == ImportStatus.FAILED and "longer than" in result.error


def test_unclosed_quote_fails_cleanly(write_csv, do_import):
    result = do_import(write_csv('email,name\na@example.org,"' + "x\n" * 70000))
    assert result.status == ImportStatus.FAILED and "row 2" in result.error.lower()
    assert count(Supporter) == 0


def test_ten_thousand_duplicates_make_one_supporter(write_csv, do_import):
    lines = ["email,first_name,city"] + [f"Same@Example.org,Name{i}," for i in range(10_000)]
    lines.append("same@example.org,,Lyon")
    result = do_import(write_csv("\n".join(lines) + "\n"))
    assert (result.created_count, result.processed_rows) == (1, 10_001)
    assert count(Supporter) == 1 and count(SubscriptionChange) == 1
    only = supporter("same@example.org")
    assert only.first_name == "Name9999" and only.custom_fields == {"city": "Lyon"}


def test_reimport_changes_nothing(write_csv, do_import):
    path = write_csv("email,first_name,team\na@example.org,Ann,red\nb@example.org,Bob,\n")
    do_import(path, source="first")
    before = {s.email: s.updated_at for s in db.session.scalars(select(Supporter))}
    again = do_import(path, source="second")
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, 2)
    db.session.expire_all()
    assert {s.email: s.updated_at for s in db.session.scalars(select(Supporter))} == before
    assert supporter("a@example.org").source == "first"  # provenance is kept
    assert count(SubscriptionChange) == 2


def test_reimport_never_resubscribes(write_csv, do_import):
    path = write_csv("email,first_name\nleft@example.org,Lee\n")
    do_import(path)
    person = supporter("left@example.org")
    change_status(person, SubscriptionStatus.UNSUBSCRIBED, channel="link", actor="supporter")
    db.session.commit()
    again = do_import(write_csv("email,first_name,status\nleft@example.org,Leigh,subscribed\n"))
    assert again.updated_count == 1
    db.session.expire_all()
    person = supporter("left@example.org")
    assert person.status == SubscriptionStatus.UNSUBSCRIBED and person.first_name == "Leigh"
    assert len(person.history) == 2


def test_erased_address_comes_back_suppressed(write_csv, do_import):
    db.session.add(
        ErasedEmail(email_hash=email_hash("gone@example.org"), status=SubscriptionStatus.BOUNCED)
    )
    db.session.commit()
    do_import(write_csv("email\nGone@Example.org\nnew@example.org\n"))
    assert supporter("gone@example.org").status == SubscriptionStatus.BOUNCED
    assert supporter("gone@example.org").history[0].new_status == SubscriptionStatus.BOUNCED
    assert supporter("new@example.org").status == SubscriptionStatus.SUBSCRIBED


def test_status_column_can_only_suppress_new_supporters(write_csv, do_import):
    result = do_import(
        write_csv(
            "email,status\na@example.org,Unsubscribed\nb@example.org,cleaned\nc@example.org,?\n"
        )
    )
    assert supporter("a@example.org").status == SubscriptionStatus.UNSUBSCRIBED
    assert supporter("b@example.org").status == SubscriptionStatus.BOUNCED
    assert result.rejected_count == 1


def test_list_and_tags_include_existing_supporters(write_csv, do_import):
    do_import(write_csv("email\nold@example.org\n"))
    result = do_import(
        write_csv("email\nold@example.org\nnew@example.org\n"),
        list_name="Petition 2024",
        tag_names=["vip", "press", "vip"],
    )
    assert (result.created_count, result.unchanged_count) == (1, 1)
    for email in ("old@example.org", "new@example.org"):
        person = supporter(email)
        db.session.refresh(person)
        assert [lst.name for lst in person.lists] == ["Petition 2024"]
        assert sorted(t.name for t in person.tags) == ["press", "vip"]
    do_import(write_csv("email\nnew@example.org\n"), list_name="Petition 2024", tag_names=["vip"])
    assert count(MailingList) == 1 and count(Tag) == 2


def test_custom_fields_merge(write_csv, do_import):
    do_import(write_csv("email,Member ID,Team\na@example.org,77,red\n"))
    result = do_import(write_csv("email,Team,Shirt Size\na@example.org,blue,\n"))
    assert result.updated_count == 1
    assert supporter("a@example.org").custom_fields == {"member_id": "77", "team": "blue"}
    assert set(db.session.scalars(select(CustomField.name))) == {"member_id", "team", "shirt_size"}


def test_small_chunks_report_progress_and_count_each_chunk(write_csv, settings):
    rows = [f"p{i}@example.org,P{i}" for i in range(25)] + ["p0@example.org,Again"]
    calls = []
    result = import_file(
        write_csv("email,first_name\n" + "\n".join(rows) + "\n"),
        settings=settings,
        progress=lambda done, total: calls.append((done, total)),
        chunk_size=10,
    )
    assert calls == [(0, 26), (10, 26), (20, 26), (26, 26)]
    assert (result.created_count, result.updated_count) == (25, 1)
    assert supporter("p0@example.org").first_name == "Again"


def test_run_twice_is_harmless(write_csv, settings):
    with open(write_csv("email\na@example.org\nbad\n"), "rb") as f:
        queued = create_import(
            f,
            "a.csv",
            list_name=None,
            tag_names=[],
            source=None,
            created_by="test",
            settings=settings,
        )
    db.session.commit()
    assert Path(queued.stored_path).parent == Path(settings.import_dir)
    first = run_import(queued.id, settings)
    assert first.status == ImportStatus.DONE and first.created_count == 1
    # A half-done import restarts from the top: rejections are not doubled, nothing duplicates.
    first.status = ImportStatus.RUNNING
    db.session.commit()
    second = run_import(queued.id, settings)
    assert (second.created_count, second.unchanged_count, second.rejected_count) == (0, 1, 1)
    assert count(ImportRejection) == 1 and count(SubscriptionChange) == 1
    run_import(queued.id, settings)  # done: does nothing
    assert db.session.get(SupporterImport, queued.id).unchanged_count == 1


def test_fast_email_path_agrees_with_email_validator():
    rng = random.Random(7)
    parts = ["a", "Z", "0", ".", "-", "_", "+", "'", "@", "é", "--", "xn--", "..", " ", "ex"]
    tlds = ["org", "test", "local", "c", "co", "1a", "онлайн", "x-y", "arpa", ""]
    for _ in range(5000):
        local = "".join(rng.choice(parts) for _ in range(rng.randint(0, 6)))
        domain = "".join(rng.choice(parts) for _ in range(rng.randint(0, 5)))
        address = f"{local}@{domain}.{rng.choice(tlds)}"
        if address.startswith(("'=", "'+", "'-", "'@")):
            continue  # the exporter's anti-formula quote, removed on purpose
        try:
            expected = validate_email(
                address.strip(), check_deliverability=False
            ).normalized.lower()
        except EmailNotValidError:
            expected = None
        try:
            got = normalise_email(address)
        except EmailNotValidError:
            got = None
        assert got == expected, address
    assert normalise_email(" Ann.Lee+x@Example.ORG ") == "ann.lee+x@example.org"
    assert normalise_email("a@xn--bcher-kva.de") == "a@bücher.de"


@pytest.mark.integration
def test_import_runs_in_a_real_rq_worker(write_csv, settings, test_database_url, redis_conn):
    from app.queues import queue_key

    with open(write_csv("email,first_name\nq1@example.org,Q\nq2@example.org,R\n"), "rb") as f:
        queued = create_import(
            f,
            "q.csv",
            list_name="Queued",
            tag_names=["rq"],
            source=None,
            created_by="test",
            settings=settings,
        )
    db.session.commit()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url,
        "REDIS_URL": settings.redis_url,
        "QUEUE_PREFIX": settings.queue_prefix,
        "IMPORT_DIR": str(settings.import_dir),
        "SECRET_KEYS": settings.secret_keys[0],
    }
    rq = Path(sys.executable).parent / "rq"
    subprocess.run(
        [
            str(rq),
            "worker",
            "--burst",
            "--url",
            settings.redis_url,
            "--serializer",
            "rq.serializers.JSONSerializer",
            queue_key(settings, "imports"),
        ],
        env=env,
        cwd=PROJECT_ROOT,
        check=True,
        timeout=120,
        capture_output=True,
    )
    db.session.expire_all()
    done = db.session.get(SupporterImport, queued.id)
    assert done.status == ImportStatus.DONE, done.error
    assert done.created_count == 2
    assert [lst.name for lst in supporter("q1@example.org").lists] == ["Queued"]
