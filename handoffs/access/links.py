"""Signed, short-lived links to one attachment: the right to download it, for whoever
holds the link until it expires (``ATTACHMENT_LINK_MAX_AGE`` seconds).

Handed to the conversation's bot (API answers, webhooks) so a channel relaying the chat
can fetch a file without the console's key; people use the rights-checking views
instead (``desk.files``, ``customers.files``). A link names the attachment's random
id and the variant (``file`` or ``thumb``), signed with ``SECRET_KEY`` (Django's
``TimestampSigner``, its own salt): it can't be forged, widened to another file, or
used after it expires.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.utils import timezone

SALT = "handoffs.attachment-link"
VARIANTS = ("file", "thumb")


def sign(public_id: str, variant: str = "file") -> str:
    if variant not in VARIANTS:
        raise ValueError(variant)
    return signing.TimestampSigner(salt=SALT).sign(f"{public_id}:{variant}")


def expires_at(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(seconds=settings.ATTACHMENT_LINK_MAX_AGE)


def unsign(token: str) -> tuple[str, str] | None:
    """(attachment public id, variant) of a valid, unexpired link; None otherwise."""
    try:
        value = signing.TimestampSigner(salt=SALT).unsign(
            token, max_age=settings.ATTACHMENT_LINK_MAX_AGE
        )
    except signing.BadSignature:  # SignatureExpired is one
        return None
    public_id, _, variant = value.rpartition(":")
    if variant not in VARIANTS or not public_id:
        return None
    return public_id, variant
