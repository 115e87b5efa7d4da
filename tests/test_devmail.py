import html
import shutil
import smtplib
from dataclasses import replace
from email.message import EmailMessage

import pytest

from app import create_app
from app.devmail import register_devmail
from tests.smtp_sink import free_port
from workers.mailcapture import captured_files, create_controller, write_message


@pytest.fixture
def mailbox(settings):
    """The test app's capture directory, emptied before and after each test."""
    directory = settings.capture_dir
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def make_message(subject="Stand with Nasrin", html_body=None) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Clarion Alerts <alerts@clarion.test>"
    message["To"] = "Ana Souza <ana@example.org>"
    message.set_content("Write to the minister today.\n")
    if html_body is not None:
        message.add_alternative(html_body, subtype="html")
    return message


def test_captured_message_is_listed_and_shown(client, mailbox):
    path = write_message(mailbox, bytes(make_message(subject="Ação urgente: Nasrin")))

    listing = client.get("/dev/mailbox")
    assert listing.status_code == 200
    page = listing.get_data(as_text=True)
    assert "Ação urgente: Nasrin" in page
    assert "ana@example.org" in page
    assert f"/dev/mailbox/{path.stem}" in page

    detail = client.get(f"/dev/mailbox/{path.stem}")
    assert detail.status_code == 200
    body = detail.get_data(as_text=True)
    assert "<pre" in body and "Write to the minister today." in body
    assert "alerts@clarion.test" in body  # the headers table


def test_listing_is_newest_first_and_paginated(client, mailbox):
    for number in range(55):
        write_message(mailbox, bytes(make_message(subject=f"Message number {number:02d}")))

    first = client.get("/dev/mailbox").get_data(as_text=True)
    assert first.index("Message number 54") < first.index("Message number 53")
    assert "Message number 04" not in first and "Page 1 of 2" in first

    second = client.get("/dev/mailbox?page=2").get_data(as_text=True)
    assert "Message number 04" in second and "Message number 05" not in second
    # A page number past the end (or not a number) shows a real page, not an error.
    assert client.get("/dev/mailbox?page=99").status_code == 200
    assert client.get("/dev/mailbox?page=abc").status_code == 200


def test_html_part_is_only_rendered_inside_a_sandboxed_iframe(client, mailbox):
    hostile = '<p onclick="x()">Act now</p><script>document.cookie</script>'
    path = write_message(mailbox, bytes(make_message(html_body=hostile)))

    response = client.get(f"/dev/mailbox/{path.stem}")
    body = response.get_data(as_text=True)
    assert "<script>document.cookie" not in body
    assert body.count("<iframe") == 1
    iframe = body[body.index("<iframe") : body.index("</iframe>")]
    sandbox = iframe.split('sandbox="', 1)[1].split('"', 1)[0].split()
    assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox
    srcdoc = html.unescape(iframe.split('srcdoc="', 1)[1].split('"', 1)[0])
    assert hostile.strip() in srcdoc
    # Belt and braces: the page's policy allows no script at all, in it or in the frame.
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src" not in response.headers["Content-Security-Policy"]


def test_raw_message_downloads_byte_for_byte(client, mailbox):
    raw = bytes(make_message())
    path = write_message(mailbox, raw)
    response = client.get(f"/dev/mailbox/{path.stem}.eml")
    assert response.status_code == 200
    assert response.mimetype == "message/rfc822"
    assert response.data == raw


@pytest.mark.parametrize(
    "name",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "..",
        "%2e%2e",
        "20260101T000000000000Z-0123456789abcdef0123456789abcdef",  # well formed, absent
        "20260101T000000000000Z-0123456789ABCDEF0123456789ABCDEF",
        "20260101T000000000000Z-0123456789abcdef0123456789abcdef.eml",
        "x.eml",
    ],
)
def test_unknown_or_malformed_names_are_404(client, mailbox, name):
    (mailbox.parent / "secret.eml").write_bytes(b"Subject: not yours\r\n\r\n")
    response = client.get(f"/dev/mailbox/{name}")
    assert response.status_code == 404
    assert b"not yours" not in response.data


def test_mailbox_is_not_served_in_production(settings):
    production = replace(settings, env="production")
    app = create_app(production, {"TESTING": True})
    register_devmail(app)  # even if called by mistake, production gets no mailbox
    assert not any(rule.rule.startswith("/dev/") for rule in app.url_map.iter_rules())


def test_capture_server_writes_each_message_it_receives(tmp_path):
    controller = create_controller(tmp_path, "127.0.0.1", free_port(), keep=3)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", controller.port, timeout=10) as smtp:
            smtp.send_message(make_message(subject="Captured over SMTP"))
            for number in range(4):
                smtp.send_message(make_message(subject=f"Later {number}"))
    finally:
        controller.stop()

    files = captured_files(tmp_path)
    assert len(files) == 3  # only the newest `keep` are kept
    subjects = [f.read_bytes().split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0] for f in files]
    assert subjects == [b"Later 1", b"Later 2", b"Later 3"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
