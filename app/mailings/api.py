"""Mailings under /api/v1/mailings: compose, preview, test send, send, pause, resume, cancel.

Roles: `analyst` reads mailings, previews and progress; `campaigner` also composes, test-sends,
sends, pauses, resumes and cancels.
"""

from __future__ import annotations

from flask import Response, current_app

from app.api.auth import current_actor, require_role
from app.api.blueprint import ApiBlueprint, commit, get_or_404
from app.api.errors import ApiError
from app.api.pagination import page_schema, paginate
from app.auth.models import Role
from app.extensions import db
from app.mailings.abtest import decision, design
from app.mailings.abtest import schemas as ab
from app.mailings.abtest.results import ab_results
from app.mailings.compose import previews, services
from app.mailings.compose import schemas as s
from app.mailings.delivery import control
from app.mailings.models import Mailing
from app.supporters.models import Supporter

mailings = ApiBlueprint(
    "mailings",
    __name__,
    url_prefix="/mailings",
    description="Compose, preview, test and send mailings; pause, resume or cancel a send.",
)


def _locked(mailing_id: int) -> Mailing:
    # Row lock: two "send" clicks, or an edit racing a send, must not both go through.
    mailing = db.session.get(Mailing, mailing_id, with_for_update=True)
    if mailing is None:
        raise ApiError(404, "not_found", f"No mailing with id {mailing_id}.")
    return mailing


def _variant(mailing: Mailing, label: str | None):
    if label is None:
        return None
    variant = next((v for v in mailing.variants if v.label == label), None)
    if variant is None:
        raise ApiError(404, "not_found", f"Mailing {mailing.id} has no variant {label}.")
    return variant


@mailings.post("")
@require_role(Role.CAMPAIGNER)
@mailings.arguments(s.MailingInSchema)
@mailings.response(201, s.MailingSchema)
def create_mailing(data):
    """Create a draft mailing.

    Merge fields, the layout, the MJML and the audience ids are checked now: a mailing that
    could not be sent is refused with 422 and the problems per field.
    """
    mailing = services.create_mailing(data)
    commit()
    return mailing


@mailings.get("")
@require_role(Role.ANALYST)
@mailings.arguments(s.MailingQuerySchema, location="query")
@mailings.response(200, page_schema(s.MailingSchema))
def list_mailings(args):
    """List mailings, newest first, optionally by status (paginated)."""
    return paginate(services.mailings_newest_first(args.get("status")), args)


@mailings.get("/<int:mailing_id>")
@require_role(Role.ANALYST)
@mailings.response(200, s.MailingSchema)
def get_mailing(mailing_id):
    """Get one mailing."""
    return get_or_404(Mailing, mailing_id, "mailing")


@mailings.patch("/<int:mailing_id>")
@require_role(Role.CAMPAIGNER)
@mailings.arguments(s.MailingPatchSchema)
@mailings.response(200, s.MailingSchema)
def patch_mailing(data, mailing_id):
    """Change some fields of a draft (409 once it has been sent or scheduled)."""
    mailing = _locked(mailing_id)
    services.update_mailing(mailing, data)
    commit()
    return mailing


@mailings.delete("/<int:mailing_id>")
@require_role(Role.CAMPAIGNER)
@mailings.response(204)
def delete_mailing(mailing_id):
    """Delete a draft (409 once it has been sent or scheduled: its statistics stay)."""
    mailing = _locked(mailing_id)
    services.delete_mailing(mailing)
    commit()


@mailings.get("/<int:mailing_id>/preview")
@require_role(Role.ANALYST)
@mailings.arguments(s.PreviewQuerySchema, location="query")
@mailings.response(200, s.PreviewSchema)
# format=html / format=text answer with that part alone (merged into the JSON 200 above).
@mailings.doc(
    responses={
        200: {
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            }
        }
    }
)
def preview_mailing(args, mailing_id):
    """Render the mailing as a supporter (or a sample person) would get it.

    Nothing is stored or recorded: links lead straight to their destinations and the open
    pixel is inert. `format=html` answers with the HTML page itself, `format=text` with the
    plain-text part.
    """
    mailing = get_or_404(Mailing, mailing_id, "mailing")
    supporter = None
    if args.get("supporter_id"):
        supporter = get_or_404(Supporter, args["supporter_id"], "supporter")
    rendered = previews.preview(
        mailing, supporter, current_app.config["CLARION"], _variant(mailing, args.get("variant"))
    )
    if args["format"] == "html":
        response = Response(rendered["html"], mimetype="text/html")
        # Staff-written HTML on the API's origin: no scripts, no same-origin access.
        response.headers["Content-Security-Policy"] = "sandbox"
        return response
    if args["format"] == "text":
        return Response(rendered["text"], mimetype="text/plain")
    return rendered


@mailings.post("/<int:mailing_id>/test")
@require_role(Role.CAMPAIGNER)
@mailings.arguments(s.TestSendInSchema)
@mailings.response(200, s.TestSendOutSchema)
def test_send_mailing(data, mailing_id):
    """Send "[TEST] " copies to up to 20 addresses now.

    Test messages are not deliveries: nothing is counted, links go straight to their
    destinations and the action and unsubscribe links act for nobody. Each address gets its
    own result; an SMTP refusal is reported there.
    """
    mailing = get_or_404(Mailing, mailing_id, "mailing")
    supporter = None
    if data.get("supporter_id"):
        supporter = get_or_404(Supporter, data["supporter_id"], "supporter")
    results = previews.test_send(
        mailing,
        data["to"],
        current_app.config["CLARION"],
        supporter=supporter,
        variant=_variant(mailing, data.get("variant")),
    )
    sent = sum(r["ok"] for r in results)
    return {"sent": sent, "failed": len(results) - sent, "results": results}


@mailings.post("/<int:mailing_id>/send")
@require_role(Role.CAMPAIGNER)
@mailings.arguments(s.SendInSchema)
@mailings.response(202, s.MailingSchema)
def send_mailing(data, mailing_id):
    """Freeze the draft and schedule its send, now or at `at`.

    422 when it cannot render or its audience selects nobody; 409 when it is not a draft, and
    409 `campaign_not_open` when its campaign is a draft, closed, past its deadline or gone
    (every "Act now" link would be dead). A scheduled mailing whose campaign stops being open
    is paused before it starts, with the reason in `status_reason`. Poll `/status` for progress.
    """
    mailing = _locked(mailing_id)
    services.send_mailing(
        mailing, current_app.config["CLARION"], at=data.get("at"), actor=current_actor()
    )
    commit()
    return mailing


@mailings.post("/<int:mailing_id>/pause")
@require_role(Role.CAMPAIGNER)
@mailings.response(200, s.MailingSchema)
def pause_mailing(mailing_id):
    """Pause a scheduled or sending mailing; workers stop after the message in hand."""
    mailing = _locked(mailing_id)
    control.pause(mailing, actor=current_actor())
    commit()
    return mailing


@mailings.post("/<int:mailing_id>/resume")
@require_role(Role.CAMPAIGNER)
@mailings.response(200, s.MailingSchema)
def resume_mailing(mailing_id):
    """Resume a paused mailing from where it stopped (409 while its campaign is not open)."""
    mailing = _locked(mailing_id)
    control.resume(mailing, current_app.config["CLARION"], actor=current_actor())
    commit()
    return mailing


@mailings.post("/<int:mailing_id>/cancel")
@require_role(Role.CAMPAIGNER)
@mailings.response(200, s.MailingSchema)
def cancel_mailing(mailing_id):
    """Cancel for good: nothing more is sent; what was sent stays counted."""
    mailing = _locked(mailing_id)
    control.cancel(mailing, actor=current_actor())
    commit()
    return mailing


@mailings.get("/<int:mailing_id>/status")
@require_role(Role.ANALYST)
@mailings.response(200, s.StatusSchema)
def mailing_status(mailing_id):
    """Report progress: deliveries by state, done/total, send rate and time left."""
    return services.status_report(get_or_404(Mailing, mailing_id, "mailing"))


def _ab_answer(mailing: Mailing) -> dict:
    results = ab_results(mailing)
    if results is None:
        raise ApiError(404, "not_found", f"Mailing {mailing.id} has no A/B test.")
    return results.as_dict() | {"variant_settings": design.variant_settings(mailing)}


@mailings.get("/<int:mailing_id>/ab-test")
@require_role(Role.ANALYST)
@mailings.response(200, ab.AbTestSchema)
def get_ab_test(mailing_id):
    """The A/B test: its settings, each variant's unique counts and probability to be best,
    the leader with its confidence, and the winner once picked (404 without a test)."""
    return _ab_answer(get_or_404(Mailing, mailing_id, "mailing"))


@mailings.put("/<int:mailing_id>/ab-test")
@require_role(Role.CAMPAIGNER)
@mailings.arguments(ab.AbTestInSchema)
@mailings.response(200, ab.AbTestSchema)
def put_ab_test(data, mailing_id):
    """Set up (or replace) a draft's A/B test: 2-5 variants of subject, from name, preheader
    or body, the share of the audience that tests, the wait and the metric (409 once sent)."""
    mailing = _locked(mailing_id)
    design.configure_ab_test(mailing, data, actor=current_actor())
    commit()
    return _ab_answer(mailing)


@mailings.delete("/<int:mailing_id>/ab-test")
@require_role(Role.CAMPAIGNER)
@mailings.response(204)
def delete_ab_test(mailing_id):
    """Make a draft a plain mailing again (409 once sent)."""
    mailing = _locked(mailing_id)
    design.remove_ab_test(mailing, actor=current_actor())
    commit()


@mailings.post("/<int:mailing_id>/ab-test/winner")
@require_role(Role.CAMPAIGNER)
@mailings.arguments(ab.WinnerInSchema)
@mailings.response(200, ab.AbTestSchema)
def pick_ab_winner(data, mailing_id):
    """Pick the winner by hand: the rest of the audience gets it now (409 before the test
    starts, once a winner is picked, or for a stopped variant)."""
    mailing = _locked(mailing_id)
    decision.pick_winner(
        mailing, data["variant"], current_app.config["CLARION"], actor=current_actor()
    )
    commit()
    return _ab_answer(mailing)


blueprints = [mailings]
