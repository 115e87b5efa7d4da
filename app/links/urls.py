"""The per-recipient URLs a mail carries; each route's path is fixed here and in app/tracking/views.py."""

from __future__ import annotations

from app.links.tokens import Purpose, TokenService

# A transparent 1x1 GIF as a data URI: previews, test sends and the mail in the browser show the
# open pixel without recording an open.
INERT_PIXEL_URL = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


def recipient_urls(base_url: str, tokens: TokenService, mailing_id: int, supporter_id: int) -> dict:
    """Return every signed URL one recipient's message needs, and the raw unsubscribe token."""
    unsubscribe = tokens.dumps(Purpose.UNSUBSCRIBE, mailing_id, supporter_id)
    click = tokens.dumps(Purpose.CLICK, mailing_id, supporter_id)
    return {
        "action_url": f"{base_url}/a/{tokens.dumps(Purpose.ACTION, mailing_id, supporter_id)}",
        "unsubscribe_url": f"{base_url}/u/{unsubscribe}",
        # RFC 8058: mail clients POST "List-Unsubscribe=One-Click" to this same URL.
        "one_click_unsubscribe_url": f"{base_url}/u/{unsubscribe}",
        "preferences_url": f"{base_url}/p/{tokens.dumps(Purpose.PREFERENCES, mailing_id, supporter_id)}",
        "view_in_browser_url": f"{base_url}/v/{tokens.dumps(Purpose.VIEW, mailing_id, supporter_id)}",
        "open_url": f"{base_url}/o/{tokens.dumps(Purpose.OPEN, mailing_id, supporter_id)}.gif",
        "click_url": f"{base_url}/c/{click}",
        "unsubscribe_token": unsubscribe,
    }
