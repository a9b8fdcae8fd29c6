"""Attachments: a file sent in the chat, by a customer, an agent or a bot.

An attachment is a message like any other: it has the sender's ``client_id`` (a retried
upload returns the message already stored, and its file is stored once), a ``seq`` in
the conversation, a broadcast after commit, a webhook to API channels and a memory
copy saying what was attached (``messages._remember``).

What is accepted is decided from the bytes, never the name or the browser's type:
PNG, JPEG, GIF and WebP images that Pillow can open and verify, and PDF documents (a
``%PDF-`` header and an ``%%EOF`` trailer), up to ``ATTACHMENT_MAX_BYTES``. Images are
decoded and re-encoded on the server (what is stored is Pillow's output: EXIF, GPS
and every other metadata chunk are gone, the orientation applied first), with a
thumbnail beside them; PDFs are stored as sent and only ever served as downloads. No
extra sniffing library: Pillow already identifies images by their content, and a PDF
needs two byte checks.

The files go through Django's storage API (``STORAGES["attachments"]``) under random
names before the message's transaction; if that transaction doesn't commit (a retry
that lost the race, an error) they are deleted again, so a file is stored with its
message or not at all (a process killed between the two leaves an unreferenced file,
which ``manage.py prune_attachments`` removes).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import unicodedata
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from PIL import Image, ImageOps, UnidentifiedImageError

from ..models import Agent, Attachment, AttachmentKind, Bot, Conversation, Message
from . import messages
from .errors import ConversationClosed, HandoffError

logger = logging.getLogger(__name__)

IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}
CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "pdf": "application/pdf",
}
MAX_PIXELS = 50_000_000  # a 50-megapixel image; beyond that it is a decompression bomb
THUMB_BOX = (480, 480)
NAME_MAX = 150
ACCEPTED = "PNG, JPEG, GIF or WebP images and PDF documents"


class AttachmentRefused(HandoffError):
    """The file is not one we accept (415) or too large (413)."""

    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


@dataclass(frozen=True)
class Inspected:
    """A file that passed the checks, ready to store (images already re-encoded)."""

    kind: str
    ext: str
    content_type: str
    data: bytes
    thumbnail: bytes | None = None
    width: int | None = None
    height: int | None = None


def max_bytes() -> int:
    return int(settings.ATTACHMENT_MAX_BYTES)


def too_large(size: int) -> AttachmentRefused:
    return AttachmentRefused(
        f"The file is {filesizeformat(size)}; the largest accepted is "
        f"{filesizeformat(max_bytes())}.",
        status=413,
        code="PAYLOAD_TOO_LARGE",
    )


def _refuse(detail: str) -> AttachmentRefused:
    return AttachmentRefused(f"{detail} Accepted: {ACCEPTED}.")


def _is_pdf(data: bytes) -> bool:
    return re.match(rb"%PDF-[12]\.[0-9]", data[:8]) is not None and b"%%EOF" in data[-2048:]


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=88, optimize=True)
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=88)
    else:
        image.save(out, "PNG", optimize=True)
    return out.getvalue()


def _image(data: bytes) -> Inspected | None:
    """Re-encode an image Pillow recognises (None: not an image at all)."""
    with warnings.catch_warnings():
        # Past MAX_PIXELS Pillow warns, past twice that it raises: both are refused.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format
                if probe.width * probe.height > MAX_PIXELS:
                    raise _refuse("The image is too large in pixels (over 50 megapixels).")
                probe.verify()
        except UnidentifiedImageError:
            return None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _refuse("The image is too large in pixels (over 50 megapixels).") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise _refuse(f"The image is damaged ({exc.__class__.__name__}).") from None
        if fmt not in IMAGE_FORMATS:
            raise _refuse(f"{fmt} images are not accepted.")
        try:
            with Image.open(io.BytesIO(data)) as source:
                source.load()
                image = ImageOps.exif_transpose(source)  # keep how it looked, drop the EXIF
                if image.mode not in ("1", "L", "LA", "RGB", "RGBA"):
                    image = image.convert("RGBA" if "transparency" in image.info else "RGB")
                # Only the pixels go on: a fresh image carries no EXIF, XMP, ICC or text.
                clean = Image.new(image.mode, image.size)
                clean.paste(image)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise _refuse(f"The image is damaged ({exc.__class__.__name__}).") from None
    # GIFs keep their first frame, as a PNG (animations are not re-encoded).
    out_fmt = fmt if fmt in ("JPEG", "WEBP") else "PNG"
    thumb = clean.copy()
    thumb.thumbnail(THUMB_BOX)
    ext = IMAGE_FORMATS[out_fmt]
    return Inspected(
        kind=AttachmentKind.IMAGE,
        ext=ext,
        content_type=CONTENT_TYPES[ext],
        data=_encode(clean, out_fmt),
        thumbnail=_encode(thumb, out_fmt),
        width=clean.width,
        height=clean.height,
    )


def inspect(data: bytes) -> Inspected:
    """Type the file from its bytes and prepare what is stored; raises AttachmentRefused."""
    if len(data) > max_bytes():
        raise too_large(len(data))
    if not data:
        raise _refuse("The file is empty.")
    if data.startswith(b"%PDF-"):
        if not _is_pdf(data):
            raise _refuse("The PDF is incomplete or damaged.")
        return Inspected(
            kind=AttachmentKind.PDF, ext="pdf", content_type=CONTENT_TYPES["pdf"], data=data
        )
    image = _image(data)
    if image is None:
        raise _refuse("This file type is not accepted.")
    return image


def display_name(name: str, ext: str) -> str:
    """The name shown and downloaded: the sender's name without a path, control
    characters or quotes, its extension the one its content has."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r'["<>:|?*;]', "", name).strip(" .")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = stem[: NAME_MAX - len(ext) - 1].strip(" .") or (
        "image" if ext in IMAGE_FORMATS.values() else "document"
    )
    return f"{stem}.{ext}"


def read_upload(upload: Any) -> bytes:
    """The bytes of an uploaded file, refusing one over the limit before reading it."""
    if not isinstance(upload, UploadedFile):
        raise HandoffError("file is required (multipart/form-data, one file)")
    if upload.size is not None and upload.size > max_bytes():
        raise too_large(upload.size)
    data = upload.read(max_bytes() + 1)
    if len(data) > max_bytes():
        raise too_large(upload.size or len(data))
    return data


def attachment_post(
    *,
    conversation: Conversation,
    sender: str,
    upload: Any,
    client_id: Any,
    caption: Any = "",
    agent: Agent | None = None,
    bot: Bot | None = None,
) -> messages.PostResult:
    """Store a file as a message (or return the one stored for ``client_id``).

    Raises what ``messages.message_post`` raises, and AttachmentRefused (413, 415)."""
    if isinstance(client_id, str):
        stored = Message.objects.filter(conversation=conversation, client_id=client_id).first()
        if stored is not None:  # a retry: the file is not read or stored again
            return messages.PostResult(stored, False)
    if conversation.closed_at is not None:
        raise ConversationClosed("This conversation has ended.")
    data = read_upload(upload)
    found = inspect(data)
    name = display_name(getattr(upload, "name", ""), found.ext)
    storage = Attachment._meta.get_field("file").storage
    token = uuid.uuid4().hex
    saved: list[str] = []
    try:
        saved.append(storage.save(f"files/{token}.{found.ext}", ContentFile(found.data)))
        if found.thumbnail is not None:
            saved.append(storage.save(f"thumbs/{token}.{found.ext}", ContentFile(found.thumbnail)))

        def attach(message: Message) -> None:
            Attachment.objects.create(
                message=message,
                kind=found.kind,
                file=saved[0],
                thumbnail=saved[1] if len(saved) > 1 else "",
                name=name,
                content_type=found.content_type,
                size=len(found.data),
                width=found.width,
                height=found.height,
                sha256=hashlib.sha256(found.data).hexdigest(),
            )

        result = messages.message_post(
            conversation=conversation,
            sender=sender,
            body=caption if caption is not None else "",
            client_id=client_id,
            agent=agent,
            bot=bot,
            attach=attach,
        )
    except BaseException:
        _delete(storage, saved)
        raise
    if not result.created:  # another request with this client id stored it first
        _delete(storage, saved)
    return result


def _delete(storage: Any, names: list[str]) -> None:
    for name in names:
        try:
            storage.delete(name)
        except OSError:  # pragma: no cover - prune_attachments takes it later
            logger.warning("could not delete the unused attachment file %s", name)
