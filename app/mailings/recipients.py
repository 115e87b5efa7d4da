"""Turn a frozen mailing and supporters into messages: the per-mailing factory, built once."""

from __future__ import annotations

from collections import OrderedDict
from email.utils import parseaddr

from app.config import PROJECT_ROOT, Settings
from app.links.tokens import TokenService
from app.links.urls import recipient_urls
from app.mailings.models import Mailing
from app.supporters.models import Supporter
from mailers.dkim import DkimSigner
from mailers.message import MessageFactory, Recipient
from mailers.render import FrozenMailing

TEMPLATES_DIR = PROJECT_ROOT / "templates" / "emails"


def sender_of(mailing: Mailing, settings: Settings) -> tuple[str | None, str]:
    """Return the (display name, address) a mailing is sent from."""
    default_name, default_address = parseaddr(settings.mail_from)
    return (mailing.from_name or default_name or None, mailing.from_email or default_address)


def frozen_of(mailing: Mailing) -> FrozenMailing:
    return FrozenMailing.from_sources(
        mailing.frozen_subject,
        mailing.frozen_html,
        mailing.frozen_text,
        [(link.position, link.url, link.is_honeypot) for link in mailing.links],
    )


def build_factory(mailing: Mailing, settings: Settings) -> MessageFactory:
    from_name, from_email = sender_of(mailing, settings)
    domain = from_email.rpartition("@")[2]
    return MessageFactory(
        frozen_of(mailing),
        from_name=from_name,
        from_email=from_email,
        reply_to=mailing.reply_to,
        list_id=f"alerts.{domain}",
        # Feedback-ID lets Gmail report complaint rates per mailing: opaque ids only.
        feedback_id=f"m{mailing.id}:c{mailing.campaign_id or 0}:clarion:{domain}",
        unsubscribe_mailto=settings.unsubscribe_mailto,
        message_id_domain=domain,
        dkim=DkimSigner.from_settings(settings),
        mailing_ref=f"m{mailing.id}",
    )


class FactoryCache:
    """Keep one MessageFactory per frozen mailing in a worker process: frozen mail never changes."""

    def __init__(self, size: int = 16):
        self._size = size
        self._factories: OrderedDict[tuple, MessageFactory] = OrderedDict()

    def get(self, mailing: Mailing, settings: Settings) -> MessageFactory:
        key = (mailing.id, mailing.frozen_at)
        factory = self._factories.get(key)
        if factory is None:
            factory = self._factories[key] = build_factory(mailing, settings)
            while len(self._factories) > self._size:
                self._factories.popitem(last=False)
        return factory


factories = FactoryCache()


def supporter_fields(supporter: Supporter) -> dict:
    """Return the merge fields of a supporter: custom fields first, standard fields win."""
    fields = dict(supporter.custom_fields or {})
    fields.update(
        first_name=supporter.first_name,
        last_name=supporter.last_name,
        email=supporter.email,
        postcode=supporter.postcode,
        country=supporter.country,
        language=supporter.language,
    )
    return fields


def recipient_from_fields(
    mailing_id: int,
    supporter_id: int,
    email: str,
    fields: dict,
    settings: Settings,
    tokens: TokenService,
    *,
    subject_prefix: str = "",
) -> Recipient:
    """Build one recipient from plain values: the hot path of sending, no ORM access."""
    urls = recipient_urls(settings.base_url, tokens, mailing_id, supporter_id)
    return Recipient(
        email=email,
        fields=fields,
        urls=urls,
        unsubscribe_token=urls.pop("unsubscribe_token"),
        subject_prefix=subject_prefix,
    )


def recipient_for(
    mailing: Mailing,
    supporter: Supporter,
    settings: Settings,
    tokens: TokenService,
    *,
    email: str | None = None,
    subject_prefix: str = "",
) -> Recipient:
    return recipient_from_fields(
        mailing.id,
        supporter.id,
        email or supporter.email,
        supporter_fields(supporter),
        settings,
        tokens,
        subject_prefix=subject_prefix,
    )
