"""Build a frozen mailing's MessageFactory once per mailing, and keep it per worker process."""

from __future__ import annotations

from collections import OrderedDict
from email.utils import parseaddr

from app.config import Settings
from app.mailings.compose.rendering import frozen_of
from app.mailings.models import Mailing, MailingVariant
from mailers.dkim import DkimSigner
from mailers.message import MessageFactory
from mailers.render import FrozenMailing


def sender_of(
    mailing: Mailing, settings: Settings, variant: MailingVariant | None = None
) -> tuple[str | None, str]:
    """Return the (display name, address) a mailing (or one of its variants) is sent from."""
    default_name, default_address = parseaddr(settings.mail_from)
    name = (variant and variant.from_name) or mailing.from_name or default_name or None
    return (name, mailing.from_email or default_address)


def build_factory(
    mailing: Mailing,
    settings: Settings,
    frozen: FrozenMailing,
    variant: MailingVariant | None = None,
) -> MessageFactory:
    """Build the message builder for `frozen`, sent as `mailing` from its sender."""
    from_name, from_email = sender_of(mailing, settings, variant)
    domain = from_email.rpartition("@")[2]
    return MessageFactory(
        frozen,
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

    def get(
        self, mailing: Mailing, settings: Settings, variant: MailingVariant | None = None
    ) -> MessageFactory:
        """The builder for the mailing's frozen mail, or for one of its A/B variants."""
        key = (mailing.id, mailing.frozen_at, variant and variant.id)
        factory = self._factories.get(key)
        if factory is None:
            frozen = frozen_of(mailing, variant)
            factory = self._factories[key] = build_factory(mailing, settings, frozen, variant)
            while len(self._factories) > self._size:
                self._factories.popitem(last=False)
        return factory


factories = FactoryCache()
