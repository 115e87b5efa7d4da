"""A local SMTP server that keeps every message as an .eml file, for development.

`python -m workers.mailcapture` listens on MAILCAPTURE_HOST:MAILCAPTURE_PORT (127.0.0.1:1025)
and writes each message into CAPTURE_DIR, where /dev/mailbox shows it. It accepts any sender
and recipient and delivers nothing. Production points SMTP_URL at a real relay instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller

from app.config import Settings

log = logging.getLogger("clarion.mailcapture")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1025
DEFAULT_KEEP = 5000
DATA_SIZE_LIMIT = 50 * 1024 * 1024


def capture_name(now: datetime | None = None) -> str:
    """Return a new file stem that sorts by arrival time: `<UTC timestamp>-<uuid>`."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex}"


def captured_files(capture_dir: Path) -> list[Path]:
    """Return the captured .eml files, oldest first (names start with their UTC timestamp)."""
    try:
        entries = list(os.scandir(capture_dir))
    except FileNotFoundError:
        return []
    # Dot-files are writes still in progress.
    names = sorted(
        e.name for e in entries if e.name.endswith(".eml") and not e.name.startswith(".")
    )
    return [capture_dir / name for name in names]


def write_message(capture_dir: Path, raw: bytes) -> Path:
    """Write one message atomically, so readers never see half a file."""
    capture_dir.mkdir(parents=True, exist_ok=True)
    name = capture_name()
    temporary = capture_dir / f".{name}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(raw)
    final = capture_dir / f"{name}.eml"
    os.replace(temporary, final)
    return final


def prune(capture_dir: Path, keep: int) -> int:
    """Delete all but the `keep` newest messages; return how many were deleted."""
    files = captured_files(capture_dir)
    excess = files[: max(len(files) - keep, 0)]
    for path in excess:
        path.unlink(missing_ok=True)
    return len(excess)


class CaptureHandler:
    """aiosmtpd handler: accept every recipient, store every message."""

    def __init__(self, capture_dir: Path, keep: int = DEFAULT_KEEP):
        self.capture_dir = Path(capture_dir)
        self.keep = keep

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or b""
        # No await between write and prune: on aiosmtpd's single loop the two never interleave.
        path = write_message(self.capture_dir, raw)
        prune(self.capture_dir, self.keep)
        log.info(
            "captured %s from=%s to=%s bytes=%d",
            path.name,
            envelope.mail_from,
            ",".join(envelope.rcpt_tos),
            len(raw),
        )
        return "250 Message captured"


def create_controller(
    capture_dir: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, keep: int = DEFAULT_KEEP
) -> Controller:
    """Build (not start) the capture server; `start()` serves it from a background thread."""
    return Controller(
        CaptureHandler(capture_dir, keep),
        hostname=host,
        port=port,
        server_hostname="mailcapture.clarion.localhost",
        data_size_limit=DATA_SIZE_LIMIT,
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("MAILCAPTURE_HOST") or DEFAULT_HOST)
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("MAILCAPTURE_PORT") or DEFAULT_PORT)
    )
    parser.add_argument(
        "--keep",
        type=int,
        default=int(os.environ.get("MAILCAPTURE_KEEP") or DEFAULT_KEEP),
        help="how many of the newest messages to keep (default %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # aiosmtpd logs every SMTP command at INFO; one line per message is what is wanted here.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    args = _parse_args(argv)
    capture_dir = Settings.from_env().capture_dir
    capture_dir.mkdir(parents=True, exist_ok=True)
    prune(capture_dir, args.keep)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    controller = create_controller(capture_dir, args.host, args.port, args.keep)
    controller.start()
    log.info("capturing mail on %s:%d into %s", args.host, args.port, capture_dir)
    try:
        stop.wait()
    finally:
        controller.stop()
        log.info("mail capture stopped")


if __name__ == "__main__":
    main()
