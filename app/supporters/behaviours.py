"""Behaviour condition types for saved segments, registered by the layers that own the data.

Behaviour (acted on a campaign, opened a mailing …) lives in the tables of higher layers, which
app/supporters must not import: each owning layer registers its types here
(`register_behaviour`: app/campaigns/behaviour.py, app/tracking/behaviour.py), create_app wires
them in once (app/routes.py), and the segment engine (segments.py) builds and checks them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import ColumnElement

from app.api.schemas import ClarionSchema as Schema

BEHAVIOUR_LIMIT = 20  # conditions in one definition

# Every parameter a behaviour condition can take, checked here so each type only declares which
# ones it needs. Ids are checked against the database by the type's own `check`.
BEHAVIOUR_PARAMS = {
    "campaign_id": fields.Int(strict=True, validate=validate.Range(min=1)),
    "mailing_id": fields.Int(strict=True, validate=validate.Range(min=1)),
    "last_mailings": fields.Int(strict=True, validate=validate.Range(min=1, max=50)),
    "months": fields.Int(strict=True, validate=validate.Range(min=1, max=120)),
}
PARAM_LABELS = {
    "campaign_id": "a campaign",
    "mailing_id": "a mailing",
    "last_mailings": "a number of recent mailings (1-50)",
    "months": "a number of months (1-120)",
}


@dataclass(frozen=True)
class BehaviourType:
    """One kind of behaviour condition: its parameters, its SQL and its database checks.

    `build(params)` returns a condition on Supporter.id (EXISTS / NOT EXISTS against the owning
    layer's tables); `check(params)` returns messages by parameter for ids that do not exist.
    """

    name: str
    label: str
    params: tuple[str, ...]
    build: Callable[[dict], ColumnElement]
    check: Callable[[dict], dict[str, list[str]]]


_behaviours: dict[str, BehaviourType] = {}


def register_behaviour(
    name: str,
    build: Callable[[dict], ColumnElement],
    check: Callable[[dict], dict[str, list[str]]],
    *,
    label: str,
    params: tuple[str, ...],
) -> None:
    """Make a behaviour condition type usable in segment definitions (again: replaces it)."""
    unknown = set(params) - set(BEHAVIOUR_PARAMS)
    if unknown:
        raise ValueError(f"Behaviour {name!r} takes unknown parameters {sorted(unknown)}.")
    _behaviours[name] = BehaviourType(name, label, tuple(params), build, check)


def behaviour_types() -> list[BehaviourType]:
    """Return the registered behaviour condition types, in the order they were registered."""
    return list(_behaviours.values())


def behaviour_type(name: str) -> BehaviourType:
    """The registered type of that name (definitions are validated before this is asked)."""
    return _behaviours[name]


class BehaviourSchema(Schema):
    type = fields.Str(
        required=True,
        metadata={
            "description": "acted_on_campaign / not_acted_on_campaign (campaign_id), "
            "opened_recent_mailings / clicked_recent_mailings (last_mailings), "
            "received_not_opened (mailing_id), not_engaged (months: mailed in that time, no "
            "open, click or action since). Opens and clicks count people only: machine events "
            "(privacy proxies, link scanners) are left out, and a click counts as an open. "
            "not_acted_on_campaign matches everyone without an action on it, mailed or not."
        },
    )
    campaign_id = BEHAVIOUR_PARAMS["campaign_id"]
    mailing_id = BEHAVIOUR_PARAMS["mailing_id"]
    last_mailings = BEHAVIOUR_PARAMS["last_mailings"]
    months = BEHAVIOUR_PARAMS["months"]

    @validates_schema
    def check_params_fit_type(self, data, **kwargs):
        kind = _behaviours.get(data["type"])
        if kind is None:
            known = ", ".join(_behaviours) or "(none registered)"
            raise ValidationError(
                f"Unknown behaviour {data['type']!r}; use one of {known}.", "type"
            )
        errors = {
            name: [f"{kind.label}: choose {PARAM_LABELS[name]}."]
            for name in kind.params
            if data.get(name) is None
        }
        errors |= {
            name: [f"{kind.label} takes no {name}."]
            for name in BEHAVIOUR_PARAMS
            if name not in kind.params and data.get(name) is not None
        }
        if errors:
            raise ValidationError(errors)
