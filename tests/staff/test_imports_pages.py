"""The staff import and export pages: upload, preview, start, progress, rejected rows, export."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from app.auth.audit import recent_entries
from app.auth.models import Role
from app.extensions import db
from app.queues import QueueName, get_queue
from app.supporters.models import ImportStatus, Supporter, SupporterImport
from app.supporters.services import change_status
from tests.factories import make_list, make_supporter

GOOD_WITH_ONE_BAD_ROW = (
    "E-mail;Vorname;Surname;Member number\n"
    "ann@example.org;Ann;Lee;101\n"
    "not-an-address;Bob;Ray;102\n"
    "cat@example.org;Cat;;103\n"
)


def upload(client, content: bytes | str, filename: str = "members.csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.submit(
        "/staff/imports/new",
        {"file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def preview_url(response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    location = response.headers["Location"]
    assert location.startswith("/staff/imports/preview/")
    return location


def start_url(preview_page_url: str) -> str:
    return preview_page_url.split("?", 1)[0]


def text(response) -> str:
    return response.get_data(as_text=True)


def cells_of(html: str, table_class: str) -> list[list[str]]:
    table = re.search(rf'<table class="{table_class}">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in rows
    ]


def run_queued_import(settings, import_id: int) -> None:
    """Perform the import's real RQ job in this process, as a worker would."""
    job = get_queue(settings, QueueName.IMPORTS).fetch_job(f"import-{import_id}")
    assert job is not None, "the start did not queue the import's job"
    job.perform()  # the job ends by removing the session: reload rows by id afterwards


def only_import() -> SupporterImport:
    return db.session.scalars(select(SupporterImport)).one()


def test_upload_preview_start_run_and_download_the_rejected_rows(
    staff_client, settings, redis_conn
):
    client = staff_client(Role.CAMPAIGNER)
    page_url = preview_url(upload(client, GOOD_WITH_ONE_BAD_ROW))
    assert db.session.scalars(select(SupporterImport)).all() == []  # nothing started yet

    preview = client.get(page_url)
    assert preview.status_code == 200
    html = text(preview)
    assert "Check the import of members.csv" in html
    assert "UTF-8" in html and "semicolon" in html
    assert cells_of(html, "import-columns")[1:] == [
        ["E-mail", "Email"],
        ["Vorname", "First name"],
        ["Surname", "Last name"],
        ["Member number", "Custom field “member_number”"],
    ]
    sample = cells_of(html, "import-sample")
    assert sample[0] == ["Row", "E-mail", "Vorname", "Surname", "Member number", "Will be"]
    assert sample[1] == ["2", "ann@example.org", "Ann", "Lee", "101", "imported"]
    assert sample[2][:2] == ["3", "not-an-address"] and "rejected" in sample[2][-1]
    assert len(sample) == 4

    started = client.submit(
        start_url(page_url),
        {"name": "members.csv", "encoding": "", "list_name": "Members", "tags": "door, 2026"},
    )
    assert started.status_code == 302, text(started)[:2000]
    supporter_import = only_import()
    assert started.headers["Location"] == f"/staff/imports/{supporter_import.id}"
    assert supporter_import.status == ImportStatus.QUEUED
    assert supporter_import.created_by == f"staff:{client.user.email}"
    [entry] = recent_entries(action="import_started")
    assert entry.actor == f"staff:{client.user.email}" and entry.subject_id == supporter_import.id
    assert "members.csv" in entry.detail

    queued_page = text(client.get(f"/staff/imports/{supporter_import.id}"))
    assert 'hx-trigger="every 1s"' in queued_page and "queued" in queued_page
    assert f'hx-get="/staff/imports/{supporter_import.id}/progress"' in queued_page
    assert f'href="/staff/imports/{supporter_import.id}">Reload</a>' in queued_page

    import_id = supporter_import.id
    run_queued_import(settings, import_id)

    fragment = text(client.get(f"/staff/imports/{import_id}/progress"))
    assert "hx-trigger" not in fragment  # done: the polling stops
    assert "<h1>" not in fragment and "done" in fragment
    assert re.search(r'<progress id="import-progress-bar" max="3" value="3">', fragment)
    figures = dict(
        (label, figure)
        for figure, label in re.findall(
            r'<span class="figure">([^<]+)</span> <span class="label">(\w+)</span>', fragment
        )
    )
    assert figures == {
        "rows": "3",
        "created": "2",
        "updated": "0",
        "unchanged": "0",
        "rejected": "1",
    }
    ann = db.session.scalar(select(Supporter).where(Supporter.email == "ann@example.org"))
    assert ann.custom_fields == {"member_number": "101"}
    assert [m.name for m in ann.lists] == ["Members"]
    assert sorted(t.name for t in ann.tags) == ["2026", "door"]

    report = client.get(f"/staff/imports/{import_id}/errors.csv")
    assert report.status_code == 200 and report.mimetype == "text/csv"
    assert "attachment" in report.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text(report))))
    assert rows == [
        ["row", "reason", "raw"],
        ["3", rows[1][1], "not-an-address,Bob,Ray,102"],  # the cells as the importer stores them
    ]
    assert rows[1][1].startswith("invalid email")

    listing = text(client.get("/staff/imports/"))
    assert "members.csv" in listing and '<span class="badge done">done</span>' in listing
    assert re.search(
        r'<td class="num">3</td>\s*<td class="num">2</td>\s*<td class="num">0</td>\s*<td class="num">1</td>',
        listing,
    )


def test_a_second_start_of_the_same_upload_does_not_import_twice(staff_client, redis_conn):
    client = staff_client(Role.CAMPAIGNER)
    page_url = preview_url(upload(client, "email\nann@example.org\n"))
    first = client.submit(start_url(page_url), {"name": "a.csv"})
    second = client.submit(start_url(page_url), {"name": "a.csv"})
    assert first.headers["Location"] == second.headers["Location"]
    assert len(db.session.scalars(select(SupporterImport)).all()) == 1
    again = client.get(page_url)  # the back button to the preview
    assert again.status_code == 302 and again.headers["Location"] == first.headers["Location"]


def test_a_chosen_encoding_is_shown_and_used(staff_client, settings, redis_conn):
    client = staff_client(Role.CAMPAIGNER)
    page_url = preview_url(upload(client, "email,name\nzoe@example.org,Zoë\n".encode("cp1252")))
    assert "Windows-1252" in text(client.get(page_url))
    forced = client.get(page_url + "&encoding=iso8859-15")
    assert forced.status_code == 200 and "ISO-8859-15" in text(forced)
    forged = client.get(page_url + "&encoding=base64")
    assert forged.status_code == 422 and "Choose an encoding from the list." in text(forged)
    client.submit(start_url(page_url), {"name": "z.csv", "encoding": "cp1252"})
    supporter_import = only_import()
    assert supporter_import.encoding == "cp1252"
    run_queued_import(settings, supporter_import.id)
    assert only_import().status == ImportStatus.DONE
    zoe = db.session.scalar(select(Supporter).where(Supporter.email == "zoe@example.org"))
    assert zoe.custom_fields == {"name": "Zoë"}


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"", "empty.csv", "The file is empty."),
        (b"   \r\n", "blank.csv", "The file is empty."),
        (
            b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" * 20,
            "people.csv",
            "The file is not text",
        ),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.csv", "The file is not text"),
        (b"email\nann@example.org\n", "people.xlsx", "Upload a .csv file"),
    ],
)
def test_unreadable_files_are_refused_next_to_the_field(staff_client, content, filename, message):
    client = staff_client(Role.CAMPAIGNER)
    response = upload(client, content, filename)
    assert response.status_code == 422
    html = text(response)
    assert message in html
    assert 'id="file-error"' in html and 'aria-describedby="file-hint file-error"' in html
    assert db.session.scalars(select(SupporterImport)).all() == []


def test_no_file_chosen_is_refused_next_to_the_field(staff_client):
    client = staff_client(Role.CAMPAIGNER)
    response = client.submit("/staff/imports/new", {}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Choose a CSV file to upload." in text(response)


def test_a_file_without_an_email_column_shows_why_and_cannot_start(staff_client, redis_conn):
    client = staff_client(Role.CAMPAIGNER)
    page_url = preview_url(upload(client, "name,town\nAnn,Leeds\n"))
    preview = client.get(page_url)
    assert preview.status_code == 422
    html = text(preview)
    assert "This file cannot be imported." in html and "no email column" in html
    assert "Start import" not in html
    assert cells_of(html, "import-columns")[1:] == [
        ["name", "Custom field “name”"],
        ["town", "Custom field “town”"],
    ]
    forced = client.submit(start_url(page_url), {"name": "x.csv"})  # a forged start
    assert forced.status_code == 422 and "no email column" in text(forced)
    assert db.session.scalars(select(SupporterImport)).all() == []


def test_a_text_file_that_is_not_csv_shows_a_clear_message(staff_client):
    client = staff_client(Role.CAMPAIGNER)
    page_url = preview_url(
        upload(client, "Dear all,\nplease find the list attached.\n", "notes.txt")
    )
    preview = client.get(page_url)
    assert preview.status_code == 422 and "no email column" in text(preview)


def test_a_header_only_file_cannot_start(staff_client):
    client = staff_client(Role.CAMPAIGNER)
    preview = client.get(preview_url(upload(client, "email,first_name\n")))
    assert "The file has a header but no rows." in text(preview)


def test_unknown_or_forged_upload_tokens_are_a_clear_404(staff_client, settings):
    client = staff_client(Role.CAMPAIGNER)
    # A file in the import directory that no upload token names: never reachable by its name.
    (Path(settings.import_dir) / "not-a-token.csv").write_text("email\nann@example.org\n")
    for token in ("0" * 32, "..", "%2e%2e", "not-a-token", "A" * 32):
        response = client.get(f"/staff/imports/preview/{token}")
        assert response.status_code == 404, token
        assert "upload the file again" in text(response)
    assert client.get("/staff/imports/preview/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.submit("/staff/imports/preview/not-a-token", {"name": "x"}).status_code == 404
    assert db.session.scalars(select(SupporterImport)).all() == []


def test_a_file_over_the_import_limit_is_refused_with_a_message(settings, make_staff_user):
    from dataclasses import replace

    from app import create_app
    from tests.staff.conftest import StaffClient

    small = create_app(replace(settings, max_import_bytes=64 * 1024), {"TESTING": True})
    small.test_client_class = StaffClient
    user = make_staff_user(Role.CAMPAIGNER)
    db.session.commit()  # the other app's request ends its context: the row must outlive it
    client = small.test_client()
    client.sign_in(user)
    big = "email\n" + "".join(f"person{n}@example.org\n" for n in range(5000))
    response = upload(client, big)
    assert response.status_code == 413
    assert "The file is larger than the" in text(response)
    assert db.session.scalars(select(SupporterImport)).all() == []


def test_the_staff_upload_takes_more_than_an_ordinary_form(staff_client):
    """Uploads share the API's import allowance, not the 64 KiB of other staff forms."""
    client = staff_client(Role.CAMPAIGNER)
    big = "email\n" + "".join(f"person{n}@example.org\n" for n in range(5000))
    assert len(big) > 64 * 1024
    preview_url(upload(client, big))


def test_analysts_see_imports_but_cannot_upload_or_start(staff_client, settings, redis_conn):
    campaigner = staff_client(Role.CAMPAIGNER)
    page_url = preview_url(upload(campaigner, "email\nann@example.org\n"))
    analyst = staff_client(Role.ANALYST)
    assert analyst.get("/staff/imports/new").status_code == 403
    assert upload(analyst, "email\nbob@example.org\n").status_code == 403
    assert analyst.get(page_url).status_code == 403
    assert analyst.submit(start_url(page_url), {"name": "a.csv"}).status_code == 403
    assert db.session.scalars(select(SupporterImport)).all() == []
    listing = analyst.get("/staff/imports/")
    assert listing.status_code == 200 and "Import a CSV file" not in text(listing)
    campaigner.submit(start_url(page_url), {"name": "a.csv"})
    supporter_import = only_import()
    assert analyst.get(f"/staff/imports/{supporter_import.id}").status_code == 200
    assert analyst.get(f"/staff/imports/{supporter_import.id}/errors.csv").status_code == 200


def test_signed_out_visitors_are_sent_to_sign_in(anonymous_client):
    assert anonymous_client.get("/staff/imports/").status_code == 302
    assert anonymous_client.get("/staff/imports/export").status_code == 302


def test_an_upload_without_the_csrf_token_is_refused(staff_client):
    client = staff_client(Role.CAMPAIGNER)
    response = client.post(
        "/staff/imports/new",
        data={"file": (io.BytesIO(b"email\na@example.org\n"), "a.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400


def test_unknown_imports_are_404(staff_client):
    client = staff_client(Role.ANALYST)
    for url in (
        "/staff/imports/999999",
        "/staff/imports/999999/progress",
        "/staff/imports/999999/errors.csv",
    ):
        assert client.get(url).status_code == 404


def test_the_list_pages_by_keyset_newest_first(staff_client, settings):
    names = [f"file{n}.csv" for n in range(53)]
    for name in names:
        db.session.add(SupporterImport(filename=name, stored_path=f"/nowhere/{name}"))
    db.session.flush()
    client = staff_client(Role.ANALYST)
    first = text(client.get("/staff/imports/"))
    assert first.index("file52.csv") < first.index("file3.csv")
    assert "file2.csv" not in first
    older = re.search(r'href="(/staff/imports/\?after=\d+)">Older imports', first).group(1)
    second = text(client.get(older))
    assert "file2.csv" in second and "file0.csv" in second and "file52.csv" not in second
    assert "Older imports" not in second
    assert client.get("/staff/imports/?after=notanid").status_code == 200


def test_export_by_list_tag_and_status_is_streamed_and_audited(staff_client):
    members = make_list("Members")
    make_supporter(
        "ann@example.org", lists=["Members"], tags=["door"], custom_fields={"town": "=cmd"}
    )
    make_supporter("bob@example.org", lists=["Members"])
    gone = make_supporter("gone@example.org", lists=["Members"])
    change_status(gone, "unsubscribed", channel="test", actor="test")
    make_supporter("outside@example.org")
    db.session.flush()
    client = staff_client(Role.ANALYST)
    form = text(client.get("/staff/imports/export"))
    assert "Members (3 members)" in form and "door (1 supporters)" in form

    def exported(**choices) -> list[dict]:
        response = client.submit(
            "/staff/imports/export", {"list_id": "", "tag_id": "", "status": "", **choices}
        )
        assert response.status_code == 200, text(response)[:2000]
        assert response.mimetype == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        return list(csv.DictReader(io.StringIO(text(response))))

    everyone = exported()
    assert {r["email"] for r in everyone} >= {
        "ann@example.org",
        "outside@example.org",
        "gone@example.org",
    }
    on_list = exported(list_id=str(members.id), status="subscribed")
    assert sorted(r["email"] for r in on_list) == ["ann@example.org", "bob@example.org"]
    tag_id = re.search(r'<option value="(\d+)">door', form).group(1)
    [tagged] = exported(tag_id=tag_id)
    assert tagged["email"] == "ann@example.org" and tagged["town"] == "'=cmd"
    entries = recent_entries(action="export")
    assert len(entries) == 3
    assert [e.detail for e in entries] == [
        "all supporters, tag 'door', status any",
        "list 'Members', any tag, status subscribed",
        "all supporters, any tag, status any",
    ]
    assert {e.actor for e in entries} == {f"staff:{client.user.email}"}


def test_export_refuses_a_forged_choice_next_to_the_field(staff_client):
    client = staff_client(Role.ANALYST)
    response = client.submit(
        "/staff/imports/export", {"list_id": "99999999", "tag_id": "", "status": "gone"}
    )
    assert response.status_code == 422
    html = text(response)
    assert 'id="list_id-error"' in html and 'id="status-error"' in html
    assert recent_entries(action="export") == []


def test_stored_upload_files_stay_inside_the_import_dir(staff_client, settings):
    client = staff_client(Role.CAMPAIGNER)
    page_url = preview_url(upload(client, "email\nann@example.org\n", "../../evil.csv"))
    token = start_url(page_url).rsplit("/", 1)[1]
    assert (Path(settings.import_dir) / f"{token}.csv").is_file()
    assert "evil.csv" in text(client.get(page_url))


def test_an_import_that_fails_in_the_worker_shows_why_and_stops_polling(
    staff_client, settings, redis_conn
):
    client = staff_client(Role.CAMPAIGNER)
    page_url = preview_url(upload(client, "email\nann@example.org\n"))
    client.submit(start_url(page_url), {"name": "gone.csv"})
    supporter_import = only_import()
    import_id = supporter_import.id
    Path(supporter_import.stored_path).unlink()  # e.g. a worker on another machine
    run_queued_import(settings, import_id)
    page = text(client.get(f"/staff/imports/{import_id}"))
    assert '<span class="badge failed">failed</span>' in page
    assert "no longer on the server" in page
    assert "hx-trigger" not in page


def test_utf16_files_from_excel_preview_and_import(staff_client, settings, redis_conn):
    client = staff_client(Role.CAMPAIGNER)
    content = "Email\tFirst name\r\nzoë@example.de\tZoë\r\n".encode("utf-16")
    page_url = preview_url(upload(client, content, "unicode.txt"))
    html = text(client.get(page_url))
    assert "UTF-16" in html and "tab" in html
    assert cells_of(html, "import-sample")[1] == ["2", "zoë@example.de", "Zoë", "imported"]
    client.submit(start_url(page_url), {"name": "unicode.txt"})
    run_queued_import(settings, only_import().id)
    assert only_import().created_count == 1


def test_hostile_file_names_are_shown_as_text(staff_client, redis_conn):
    client = staff_client(Role.CAMPAIGNER)
    hostile = "<img src=x onerror=alert(1)>.csv"
    page_url = preview_url(upload(client, "email\nann@example.org\n", hostile))
    preview = text(client.get(page_url))
    assert "<img src=x" not in preview and "&lt;img src=x" in preview
    client.submit(start_url(page_url), {"name": hostile})
    listing = text(client.get("/staff/imports/"))
    assert "<img src=x" not in listing and "&lt;img src=x" in listing


def test_forged_start_options_are_refused_next_to_the_field(staff_client, redis_conn):
    client = staff_client(Role.CAMPAIGNER)
    page_url = preview_url(upload(client, "email\nann@example.org\n"))
    response = client.submit(
        start_url(page_url), {"name": "a.csv", "list_name": "L" * 201, "encoding": "rot13"}
    )
    assert response.status_code == 422
    html = text(response)
    assert 'id="list_name-error"' in html and 'id="encoding-error"' in html
    assert db.session.scalars(select(SupporterImport)).all() == []


def test_a_wrong_encoding_choice_shows_the_problem_not_a_crash(staff_client):
    client = staff_client(Role.CAMPAIGNER)
    page_url = preview_url(upload(client, "email,name\nann@example.org,Łukasz\n"))
    assert "Start import" in text(client.get(page_url))
    response = client.get(page_url + "&encoding=cp1252")  # UTF-8's "Ł" has a byte cp1252 lacks
    assert response.status_code == 422
    html = text(response)
    assert "This file cannot be imported." in html and "row 2" in html
    assert "Start import" not in html
