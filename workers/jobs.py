"""RQ jobs for sending: thin wrappers that take ids, open an app context and call a service."""

from __future__ import annotations

from dataclasses import asdict

from app.mailings.delivery.launch import start_mailing as start
from app.mailings.delivery.sending import send_batch as send
from workers.runtime import job_context


def start_mailing(mailing_id: int) -> bool:
    """Snapshot the audience of a due mailing and fan out its batches."""
    with job_context() as settings:
        return start(mailing_id, settings)


def send_batch(mailing_id: int, batch_no: int) -> dict:
    """Send one batch of a mailing."""
    with job_context() as settings:
        return asdict(send(mailing_id, batch_no, settings))
