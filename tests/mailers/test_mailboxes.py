"""The one mailbox reader the bounce and unsubscribe imports share."""

from __future__ import annotations

import email.policy
import mailbox
from email.message import EmailMessage, Message

import pytest

from mailers.mailboxes import NotAMailbox, read_mailbox


def _raw(subject: str) -> bytes:
    return f"From: a@example.org\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


def _subjects(path, **kwargs):
    return [m["Subject"] for m in read_mailbox(path, **kwargs)]


def test_every_kind_of_mailbox_reads_the_same(tmp_path):
    box = mailbox.mbox(tmp_path / "in.mbox")
    for subject in ("one", "two"):
        box.add(_raw(subject))
    box.close()
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    for subject in ("one", "two"):
        maildir.add(_raw(subject))
    (tmp_path / "emls").mkdir()
    for n, subject in enumerate(("one", "two")):
        (tmp_path / "emls" / f"{n}.eml").write_bytes(_raw(subject))
    (tmp_path / "single.eml").write_bytes(_raw("one"))

    assert _subjects(tmp_path / "in.mbox") == ["one", "two"]
    assert sorted(_subjects(tmp_path / "Maildir")) == ["one", "two"]
    assert _subjects(tmp_path / "emls") == ["one", "two"]
    assert _subjects(tmp_path / "single.eml") == ["one"]


def test_policy_chooses_the_message_class(tmp_path):
    (tmp_path / "one.eml").write_bytes(_raw("one"))
    (legacy,) = read_mailbox(tmp_path / "one.eml")
    (modern,) = read_mailbox(tmp_path / "one.eml", policy=email.policy.default)
    assert type(legacy) is Message and isinstance(modern, EmailMessage)


def test_a_folder_that_is_no_mailbox_is_refused(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotAMailbox, match="not a Maildir"):
        list(read_mailbox(tmp_path / "plain"))
    assert issubclass(NotAMailbox, mailbox.Error)  # what both import commands report
