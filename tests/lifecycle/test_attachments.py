"""Attachments with real files: typed from their bytes, limited in size, images
re-encoded without EXIF, stored once per client id, described in the memory copy."""

from __future__ import annotations

import contextlib
import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.attachments import AttachmentRefused, attachment_post
from handoffs.models import Attachment, MemoryWrite, Message, Sender
from tests import factories
from tests.files import images

pytestmark = [pytest.mark.pg, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def conversation(teams, make_agent):
    alice = make_agent("alice", teams=[teams["billing-specialist"]])
    handoff = factories.escalate(customer="user-dana", customer_name="Dana Whitfield")
    handoff_accept(handoff_id=handoff.pk, agent=alice)
    handoff.refresh_from_db()
    return handoff.conversation


def upload(data: bytes, name: str, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def post(conversation, data: bytes, name: str, client_id: str = "c-1", **kwargs):
    return attachment_post(
        conversation=conversation,
        sender=Sender.CUSTOMER,
        upload=upload(data, name, kwargs.pop("content_type", "application/octet-stream")),
        client_id=client_id,
        **kwargs,
    )


def stored_files(attachment: Attachment) -> list[str]:
    names = [attachment.file.name]
    if attachment.thumbnail:
        names.append(attachment.thumbnail.name)
    return names


def test_png_renamed_pdf_is_typed_from_its_content_and_stored_as_png(conversation):
    result = post(conversation, images.png(), "invoice.pdf", content_type="application/pdf")
    attachment = result.message.attachment
    assert attachment.kind == "image"
    assert attachment.content_type == "image/png"
    assert attachment.name == "invoice.png"  # the extension its bytes have
    with attachment.file.open("rb") as fh:
        assert Image.open(fh).format == "PNG"
    assert attachment.thumbnail


def test_html_renamed_png_is_refused_and_nothing_is_stored(conversation):
    before = set(_all_files())
    with pytest.raises(AttachmentRefused) as refused:
        post(conversation, images.HTML, "cat.png", content_type="image/png")
    assert refused.value.status == 415
    assert refused.value.code == "UNSUPPORTED_MEDIA_TYPE"
    assert "Accepted: PNG, JPEG, GIF or WebP images and PDF documents" in refused.value.message
    assert not Message.objects.filter(client_id="c-1").exists()
    assert set(_all_files()) == before


def test_oversized_image_is_refused_with_the_limit_in_the_message(conversation, settings):
    settings.ATTACHMENT_MAX_BYTES = 2 * 1024 * 1024
    data = images.noisy_png(2.5)
    assert len(data) > settings.ATTACHMENT_MAX_BYTES
    with pytest.raises(AttachmentRefused) as refused:
        post(conversation, data, "huge.png", content_type="image/png")
    assert refused.value.status == 413
    assert refused.value.code == "PAYLOAD_TOO_LARGE"
    assert "the largest accepted is 2.0\xa0MB" in refused.value.message
    assert not Attachment.objects.exists()


def test_gps_exif_is_gone_from_the_stored_image_and_its_thumbnail(conversation):
    data = images.jpeg_with_gps()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(images.GPS_IFD)  # it is there
    attachment = post(conversation, data, "holiday.jpg").message.attachment
    assert attachment.content_type == "image/jpeg"
    for name in stored_files(attachment):
        with attachment.file.storage.open(name, "rb") as fh:
            raw = fh.read()
        stored = Image.open(io.BytesIO(raw))
        assert dict(stored.getexif()) == {}
        assert "exif" not in stored.info
        assert b"SpyCam" not in raw and b"Exif" not in raw
    assert (attachment.width, attachment.height) == (640, 480)


def test_a_pdf_is_stored_as_sent_and_a_broken_one_is_refused(conversation):
    data = images.pdf()
    attachment = post(conversation, data, "statement.PDF").message.attachment
    assert (attachment.kind, attachment.content_type, attachment.name) == (
        "pdf",
        "application/pdf",
        "statement.pdf",
    )
    with attachment.file.open("rb") as fh:
        assert fh.read() == data
    assert not attachment.thumbnail
    with pytest.raises(AttachmentRefused):
        post(conversation, data[: len(data) // 2], "cut.pdf", client_id="c-2")


def test_a_retried_upload_is_stored_once(conversation):
    first = post(conversation, images.png(), "a.png", client_id="same")
    files_after_first = set(_all_files())
    again = post(conversation, images.png(color=(1, 2, 3)), "b.png", client_id="same")
    assert first.created and not again.created
    assert again.message.pk == first.message.pk
    assert Attachment.objects.count() == 1
    assert set(_all_files()) == files_after_first


def test_the_memory_copy_says_what_was_attached(conversation):
    result = post(conversation, images.pdf(), "invoice.pdf", caption="Here it is")
    write = MemoryWrite.objects.filter(payload__metadata__client_id="c-1").get()
    content = write.payload["content"]
    assert content.startswith("Here it is\n[Attached: invoice.pdf (PDF document, ")
    meta = write.payload["metadata"]["attachment"]
    assert meta["name"] == "invoice.pdf"
    assert meta["content_type"] == "application/pdf"
    assert meta["size"] == result.message.attachment.size


def test_a_closed_conversation_takes_no_file(conversation):
    from django.utils import timezone

    conversation.closed_at = timezone.now()
    conversation.save()
    from handoffs.lifecycle.errors import ConversationClosed

    with pytest.raises(ConversationClosed):
        post(conversation, images.png(), "a.png")
    assert not Attachment.objects.exists()


def _all_files() -> list[str]:
    from django.core.files.storage import storages

    storage = storages["attachments"]
    found = []
    for folder in ("files", "thumbs"):
        with contextlib.suppress(FileNotFoundError):
            found += [f"{folder}/{n}" for n in storage.listdir(folder)[1]]
    return found


def test_prune_attachments_deletes_only_old_unreferenced_files(conversation):
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.core.files.storage import storages
    from django.core.management import call_command

    kept = post(conversation, images.png(), "kept.png").message.attachment
    storage = storages["attachments"]
    orphan = storage.save("files/orphan.png", ContentFile(images.png()))
    fresh = storage.save("files/in-flight.png", ContentFile(images.png()))
    old = (timezone.now() - timedelta(hours=2)).timestamp()
    os.utime(storage.path(orphan), (old, old))
    call_command("prune_attachments", stdout=io.StringIO())
    assert not storage.exists(orphan)
    assert storage.exists(fresh)  # younger than an hour: maybe an upload in flight
    assert storage.exists(kept.file.name) and storage.exists(kept.thumbnail.name)


@pytest.mark.parametrize(
    ("sent", "ext", "shown"),
    [
        ("../../etc/passwd.png", "png", "passwd.png"),
        ("C:\\Users\\dana\\scan.PDF", "pdf", "scan.pdf"),
        ('"><img src=x onerror=alert(1)>.png', "png", "img src=x onerror=alert(1).png"),
        ("invoice\u202egnp.exe", "png", "invoicegnp.png"),  # RTL override removed
        ("", "pdf", "document.pdf"),
        ("...", "png", "image.png"),
        ("x" * 300 + ".jpg", "jpg", "x" * 146 + ".jpg"),
    ],
)
def test_display_names_are_plain_and_typed_from_the_content(sent, ext, shown):
    from handoffs.lifecycle.attachments import display_name

    assert display_name(sent, ext) == shown


def test_a_png_loses_its_exif_and_text_chunks(conversation):
    data = images.png_with_gps((320, 200))
    assert b"eXIf" in data and b"secret-location" in data
    attachment = post(conversation, data, "shot.png").message.attachment
    for name in stored_files(attachment):
        with attachment.file.storage.open(name, "rb") as fh:
            raw = fh.read()
        assert b"eXIf" not in raw and b"secret-location" not in raw and b"SpyCam" not in raw
