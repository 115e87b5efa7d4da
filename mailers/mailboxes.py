"""Reading a mailbox someone exported: the one reader the bounce and unsubscribe imports share."""

from __future__ import annotations

import email
import mailbox
from collections.abc import Iterator
from email.message import Message
from email.policy import Policy, compat32
from pathlib import Path


class NotAMailbox(mailbox.Error):
    """A folder that is neither a Maildir nor a folder of .eml files."""


def read_mailbox(path: Path, policy: Policy = compat32) -> Iterator[Message]:
    """Yield each message of an mbox file, an .eml file, a Maildir or a folder of .eml files.

    Messages come in a stable order (Maildir keys and .eml names sorted), each parsed with
    `policy`, so importing the same mailbox twice walks it the same way.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            folder = mailbox.Maildir(path, factory=None, create=False)
            for key in sorted(folder.iterkeys()):
                yield email.message_from_bytes(folder.get_bytes(key), policy=policy)
            return
        files = sorted(path.glob("*.eml"))
        if not files:
            raise NotAMailbox(
                f"{path} is a folder but not a Maildir (cur, new, tmp) and holds no .eml files"
            )
        for eml in files:
            yield email.message_from_bytes(eml.read_bytes(), policy=policy)
        return
    with path.open("rb") as f:
        is_mbox = f.read(5) == b"From "
    if not is_mbox:
        yield email.message_from_bytes(path.read_bytes(), policy=policy)
        return
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for key in box.iterkeys():
            yield email.message_from_bytes(box.get_bytes(key), policy=policy)
    finally:
        box.close()
