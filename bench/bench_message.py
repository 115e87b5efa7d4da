"""Time MessageFactory against the naive EmailMessage approach on the demo alert.

    .venv/bin/python bench/bench_message.py [--count 20000] [--naive-count 2000] [--profile]
                                            [--quick]   (or BENCH_QUICK=1: small counts, seconds)

Both paths render the same three compiled templates for the same recipients; they differ only
in how the message bytes are made. --profile runs pyinstrument over the fast path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from app.config import PROJECT_ROOT
from mailers.message import MessageFactory, Recipient, merge_context
from mailers.render import freeze

BASE = "https://act.example.org"
QUICK = {"count": 500, "naive_count": 100}
NAMES = [("Zoë", "Ñúñez"), ("John", "Smith"), ("Amara", "Okafor"), ("Lin", "Wei"), (None, None)]


def demo_factory() -> tuple[MessageFactory, object]:
    frozen = freeze(
        None,
        "28 families could be deported within days",
        None,
        None,
        "demo_28_children",
        organisation_name="Rights Watch USA",
        postal_address="311 W 43rd Street, 7th Floor, New York, NY 10036",
        templates_dir=PROJECT_ROOT / "templates" / "emails",
    )
    factory = MessageFactory(
        frozen,
        from_name="Elena Marsh, Rights Watch USA",
        from_email="alerts@act.example.org",
        reply_to="info@act.example.org",
        list_id="action-alerts.act.example.org",
        feedback_id="42:alerts:clarion",
        unsubscribe_mailto="unsubscribe@act.example.org",
        message_id_domain="act.example.org",
    )
    return factory, frozen


def recipients(count: int) -> list[Recipient]:
    people = []
    for n in range(count):
        first, last = NAMES[n % len(NAMES)]
        token = f"WzQyLDEw{n:08d}.Zk9x2A.abcDEFghiJKLmnoPQRstu"
        people.append(
            Recipient(
                email=f"supporter{n}@example.com",
                fields={"first_name": first, "last_name": last, "postcode": "10036"},
                urls={
                    "action_url": f"{BASE}/a/{token}",
                    "unsubscribe_url": f"{BASE}/u/{token}",
                    "one_click_unsubscribe_url": f"{BASE}/u/{token}/one-click",
                    "preferences_url": f"{BASE}/p/{token}",
                    "view_in_browser_url": f"{BASE}/v/{token}",
                    "open_url": f"{BASE}/o/{token}.gif",
                    "click_url": f"{BASE}/c/{token}",
                },
                unsubscribe_token=token,
            )
        )
    return people


def naive_build(frozen, recipient: Recipient) -> bytes:
    """The obvious way: render, then let the email package assemble and serialise."""
    context = merge_context(recipient)
    message = EmailMessage()
    message["From"] = formataddr(("Elena Marsh, Rights Watch USA", "alerts@act.example.org"))
    name = " ".join(str(context.get(k, "")) for k in ("first_name", "last_name")).strip()
    message["To"] = formataddr((name, recipient.email))
    message["Subject"] = frozen.subject_template.render(context)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="act.example.org")
    message["List-Unsubscribe"] = f"<{recipient.urls['one_click_unsubscribe_url']}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(frozen.text_template.render(context), cte="quoted-printable")
    message.add_alternative(
        frozen.html_template.render(context), subtype="html", cte="quoted-printable"
    )
    return message.as_bytes()


def time_per_message(build, people: list[Recipient], rounds: int = 3) -> float:
    """Return the best of a few rounds, in microseconds per message."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for person in people:
            build(person)
        results.append((time.perf_counter() - start) / len(people) * 1e6)
    return min(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--naive-count", type=int, default=2_000)
    parser.add_argument("--profile", action="store_true", help="profile the fast path")
    parser.add_argument("--quick", action="store_true", help="small counts (also BENCH_QUICK=1)")
    args = parser.parse_args()
    if args.quick or os.environ.get("BENCH_QUICK") == "1":
        parser.set_defaults(**QUICK)  # explicit options still win
        args = parser.parse_args()

    factory, frozen = demo_factory()
    people = recipients(args.count)
    sample = factory.build(people[0]).data
    render_us = time_per_message(
        lambda r: (
            frozen.html_template.render(merge_context(r)),
            frozen.text_template.render(merge_context(r)),
        ),
        people[: args.naive_count],
    )
    fast_us = time_per_message(factory.build, people, rounds=1 if args.count > 5000 else 3)
    naive_us = time_per_message(lambda r: naive_build(frozen, r), people[: args.naive_count], 1)
    sizes = [len(factory.build(p).data) for p in people[:50]]

    print(f"demo alert: {statistics.mean(sizes) / 1024:.1f} KiB per message, {len(sample)} bytes")
    print(f"MessageFactory.build : {fast_us:8.1f} µs/message  ({args.count} messages)")
    print(f"naive EmailMessage   : {naive_us:8.1f} µs/message  ({args.naive_count} messages)")
    print(f"  of which rendering : {render_us:8.1f} µs/message  (html + text templates)")
    print(f"speed-up             : {naive_us / fast_us:8.1f}x")

    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0001)
        profiler.start()
        for person in people:
            factory.build(person)
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
