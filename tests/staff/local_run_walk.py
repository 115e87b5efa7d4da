"""Sign in and open every staff page on the database in DATABASE_URL (run as a script).

tests/staff/test_local_run.py runs it in a child process against a SQLite file prepared the way
`make run` prepares var/clarion.db, so the pages are checked on the local run's database too
(the rest of the suite runs on PostgreSQL). Prints one line per page: status, URL.
"""

from __future__ import annotations

import re
import sys

from sqlalchemy import func, select

from app import create_app
from app.campaigns.models import Campaign
from app.extensions import db
from app.mailings.models import Mailing
from app.supporters.models import MailingList, Segment, Supporter, Tag

SKIP = {"staff_account.login_code", "staff_account.reset_password"}  # need a pending sign-in
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def main(email: str, password: str) -> int:
    app = create_app()
    client = app.test_client()
    page = client.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    signed_in = client.post(
        "/staff/login", data={"email": email, "password": password, "csrf_token": token}
    )
    print(signed_in.status_code, "POST /staff/login")
    with app.app_context():
        ids = {
            "mailing_id": db.session.scalar(select(func.min(Mailing.id))),
            "campaign_id": db.session.scalar(select(func.min(Campaign.id))),
            "supporter_id": db.session.scalar(select(func.min(Supporter.id))),
            "list_id": db.session.scalar(select(func.min(MailingList.id))),
            "tag_id": db.session.scalar(select(func.min(Tag.id))),
            "segment_id": db.session.scalar(select(func.min(Segment.id))),
        }
        rules = [
            rule
            for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("staff_") and "GET" in rule.methods
        ]
    failures = 0
    with app.test_request_context():
        from flask import url_for

        for rule in sorted(rules, key=lambda r: r.rule):
            if rule.endpoint in SKIP or not set(rule.arguments) <= set(ids):
                continue
            url = url_for(rule.endpoint, **{name: ids[name] for name in rule.arguments})
            status = client.get(url).status_code
            print(status, url)
            failures += status != 200
    return 1 if failures or signed_in.status_code != 302 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
