"""The demo alert, exactly as MessageFactory builds it, must not look like spam to SpamAssassin."""

import re
import shutil
import subprocess

import pytest

from tests.mailers.conftest import make_recipient

SPAMASSASSIN = shutil.which("spamassassin")

pytestmark = pytest.mark.skipif(
    SPAMASSASSIN is None,
    reason="spamassassin is not installed (apt-get install -y spamassassin; CI installs it)",
)


def spam_status(data: bytes) -> tuple[float, list[str]]:
    result = subprocess.run(
        [SPAMASSASSIN, "-L", "-t", "--cf=use_bayes 0"],
        input=data,
        capture_output=True,
        timeout=180,
        check=True,
    )
    output = result.stdout.decode("utf-8", "replace")
    match = re.search(
        r"^X-Spam-Status: .*?score=(-?[\d.]+).*?tests=(.*?) autolearn",
        output,
        re.MULTILINE | re.DOTALL,
    )
    assert match, output[:2000]
    rules = [rule.strip() for rule in match.group(2).split(",") if rule.strip()]
    return float(match.group(1)), rules


@pytest.mark.parametrize(
    "fields",
    [
        {"first_name": "Zoë", "last_name": "Ñúñez"},
        {"first_name": "John", "last_name": "Smith"},
        # No name: the salutation falls back to "Friend" (never "Dear Friend", see the layout).
        {"first_name": None, "last_name": None},
    ],
)
def test_demo_alert_scores_at_most_zero(demo_factory, fields):
    data = demo_factory.build(make_recipient(**fields)).data
    score, rules = spam_status(data)
    assert score <= 0, f"score {score}, rules {rules}"
