"""The text of a campaign's letters: placeholders, the model letter, each target's copy.

Below both services (the page's letter) and letters (what is sent), which both use it.
"""

from __future__ import annotations

import re

from app.campaigns.models import Action, Campaign
from app.supporters.models import Supporter

PLACEHOLDERS = ("salutation", "supporter_name", "supporter_town")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def fill_placeholders(template: str, values: dict[str, str]) -> str:
    """Replace only the known {placeholders}; any other brace in staff text stays as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template or "")


def supporter_town(supporter: Supporter | None) -> str:
    if supporter is None:
        return ""
    return str((supporter.custom_fields or {}).get("town") or "")


def model_letter(campaign: Campaign, name: str, town: str) -> str:
    """Return the campaign's model letter addressed to its first target and signed.

    A model without a {salutation} placeholder still opens with the first target's salutation
    on a line of its own, so no letter is addressed to nobody and letter_for_target can swap
    it for each other target's.
    """
    first = campaign.targets[0] if campaign.targets else None
    salutation = first.salutation if first else ""
    template = campaign.letter_body or ""
    if salutation and "{salutation}" not in template:
        template = "{salutation},\n\n" + template.lstrip()
    return fill_placeholders(
        template,
        {"salutation": salutation, "supporter_name": name, "supporter_town": town},
    ).strip()


def letter_for_target(action: Action, campaign: Campaign, target) -> str:
    """Return the action's letter addressed to `target`.

    The page shows one letter, addressed to the first target (model_letter always opens with
    its salutation); each other target gets the same text with its own salutation when the
    supporter left the opening salutation as it was.
    """
    body = action.letter_body or ""
    first = campaign.targets[0] if campaign.targets else None
    if (
        first is not None
        and first.salutation
        and target.id != first.id
        and body.startswith(first.salutation)
    ):
        body = target.salutation + body[len(first.salutation) :]
    return body
