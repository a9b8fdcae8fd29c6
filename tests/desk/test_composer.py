"""The composer's server side: uploads by agents and customers, who may fetch a file,
signed links, saved replies (rights, variables, unfilled placeholders, use counts) and
safe links in rendered messages."""

from __future__ import annotations

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from handoffs.access import links
from handoffs.lifecycle.accept import handoff_accept
from handoffs.lifecycle.endings import conversation_resolve, handoff_transfer
from handoffs.models import Attachment, Message, Role, SavedReply
from tests import factories
from tests.files import images

pytestmark = [pytest.mark.pg, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(teams, make_agent):
    billing, tech = teams["billing-specialist"], teams["tech-support"]
    return {
        "alice": make_agent("alice", teams=[billing]),
        "bob": make_agent("bob", teams=[billing]),
        "carol": make_agent("carol", teams=[tech]),
        "sam": make_agent("sam", role=Role.SUPERVISOR),
    }


@pytest.fixture
def hop(people):
    handoff = factories.escalate(
        customer="user-dana", customer_name="Dana Whitfield", reason="a double charge"
    )
    handoff_accept(handoff_id=handoff.pk, agent=people["alice"])
    handoff.refresh_from_db()
    return handoff


def agent_upload(client: Client, hop, data: bytes, name: str, client_id: str = "up-1"):
    return client.post(
        reverse("conversation-attachments", args=[hop.pk]),
        {"file": SimpleUploadedFile(name, data), "client_id": client_id},
    )


def test_agent_upload_is_a_message_and_only_people_who_see_the_chat_get_the_file(hop, people):
    alice = factories.logged_in(people["alice"])
    response = agent_upload(alice, hop, images.pdf(), "refund.pdf")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] and 'class="attachment-download"' in body["html"]
    attachment = Attachment.objects.get()
    url = reverse("agent-file", args=[attachment.public_id])
    got = alice.get(url)
    assert got.status_code == 200
    assert got["Content-Type"] == "application/pdf"
    assert got["Content-Disposition"].startswith('attachment; filename="refund.pdf"')
    assert got["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got["Content-Security-Policy"]
    assert factories.logged_in(people["sam"]).get(url).status_code == 200  # supervisor
    # Outside the conversation's team, a colleague who never had it, or nobody: 404.
    assert factories.logged_in(people["carol"]).get(url).status_code == 404
    assert factories.logged_in(people["bob"]).get(url).status_code == 404
    assert Client().get(url).status_code == 404
    # The same upload again (a retry) is the same message, stored once.
    again = agent_upload(alice, hop, images.pdf(), "refund.pdf")
    assert again.status_code == 200 and not again.json()["created"]
    assert Attachment.objects.count() == 1


def test_a_former_owner_keeps_files_up_to_the_handover_only(hop, people, teams):
    alice = factories.logged_in(people["alice"])
    agent_upload(alice, hop, images.png(), "before.png", "a-1")
    before = Attachment.objects.get()
    handoff_transfer(handoff_id=hop.pk, agent=people["alice"], to="tech-support", note="n")
    nxt = hop.next_hops.get()
    handoff_accept(handoff_id=nxt.pk, agent=people["carol"])
    carol = factories.logged_in(people["carol"])
    response = agent_upload(carol, nxt, images.png(color=(9, 9, 9)), "after.png", "c-1")
    assert response.status_code == 201
    after = Attachment.objects.exclude(pk=before.pk).get()
    assert alice.get(reverse("agent-file", args=[before.public_id])).status_code == 200
    assert alice.get(reverse("agent-file", args=[after.public_id])).status_code == 404
    assert carol.get(reverse("agent-file", args=[before.public_id])).status_code == 200


def test_a_resolved_conversations_files_open_for_its_teams_history_only(hop, people):
    """The history shows a team's closed conversations read-only, so their files open for
    the team (bob never held it), still not for another team's agent or nobody."""
    alice = factories.logged_in(people["alice"])
    agent_upload(alice, hop, images.png(), "receipt.png", "r-1")
    url = reverse("agent-file", args=[Attachment.objects.get().public_id])
    bob = factories.logged_in(people["bob"])
    assert bob.get(url).status_code == 404  # open, and not his
    conversation_resolve(handoff_id=hop.pk, agent=people["alice"], summary="Refunded.")
    assert bob.get(reverse("transcript", args=[hop.pk])).status_code == 200
    assert bob.get(url).status_code == 200
    assert factories.logged_in(people["carol"]).get(url).status_code == 404
    assert Client().get(url).status_code == 404


def test_customer_uploads_through_the_link_and_reads_only_its_public_files(hop, people):
    token = hop.conversation.token
    customer = Client(enforce_csrf_checks=True)
    response = customer.post(
        reverse("customer-attachments", args=[token]),
        {"file": SimpleUploadedFile("screenshot.png", images.png()), "client_id": "cu-1"},
    )
    assert response.status_code == 201, response.content
    attachment = Attachment.objects.get()
    html = response.json()["html"]
    assert reverse("customer-file", args=[token, attachment.public_id]) in html
    full = customer.get(reverse("customer-file", args=[token, attachment.public_id]))
    thumb = customer.get(reverse("customer-file", args=[token, attachment.public_id]) + "?v=thumb")
    assert full.status_code == thumb.status_code == 200
    assert full["Content-Type"] == "image/png" and "inline" in full["Content-Disposition"]
    # A private note's file never travels on the customer's link.
    alice = factories.logged_in(people["alice"])
    alice.post(
        reverse("conversation-attachments", args=[hop.pk]),
        {"file": SimpleUploadedFile("n.png", images.png()), "client_id": "n-1", "note": "1"},
    )
    note = Attachment.objects.get(message__sender="note")
    assert customer.get(reverse("customer-file", args=[token, note.public_id])).status_code == 404
    # Another conversation's link can't reach this file.
    other = factories.escalate()
    assert other.conversation.token != token
    assert (
        customer.get(
            reverse("customer-file", args=[other.conversation.token, attachment.public_id])
        ).status_code
        == 404
    )


def test_refusals_answer_in_the_error_shape(hop, people, settings):
    token = hop.conversation.token
    customer = Client()
    url = reverse("customer-attachments", args=[token])
    html = customer.post(url, {"file": SimpleUploadedFile("x.png", images.HTML), "client_id": "h"})
    assert html.status_code == 415
    assert html.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    settings.ATTACHMENT_MAX_BYTES = 1024
    big = customer.post(
        url, {"file": SimpleUploadedFile("b.png", images.noisy_png(0.05)), "client_id": "b"}
    )
    assert big.status_code == 413 and big.json()["code"] == "PAYLOAD_TOO_LARGE"
    none = customer.post(url, {"client_id": "n"})
    assert none.status_code == 400 and "file is required" in none.json()["error"]
    assert not Message.objects.filter(client_id__in=["h", "b", "n"]).exists()


def test_signed_links_open_the_file_until_they_expire(hop, people, settings):
    alice = factories.logged_in(people["alice"])
    agent_upload(alice, hop, images.png(), "a.png")
    attachment = Attachment.objects.get()
    settings.ATTACHMENT_LINK_MAX_AGE = 60
    with time_machine.travel("2026-01-01 12:00:00 +0000", tick=False):
        url = reverse("attachment-signed", args=[links.sign(str(attachment.public_id))])
        assert Client().get(url).status_code == 200
    with time_machine.travel("2026-01-01 12:00:59 +0000", tick=False):
        assert Client().get(url).status_code == 200
    with time_machine.travel("2026-01-01 12:01:01 +0000", tick=False):
        expired = Client().get(url)
    assert expired.status_code == 403
    tampered = url.replace(str(attachment.public_id)[:4], "0000")
    assert Client().get(tampered).status_code in (403, 404)


# ---------------------------------------------------------------- saved replies
def test_saved_reply_fill_counts_use_and_refuses_unfilled_variables(hop, people, teams):
    team_reply = SavedReply.objects.create(
        team=teams["billing-specialist"],
        shortcut="refund",
        title="Refund on its way",
        body="Hi {{ customer.first_name }}, {{ agent.name }} here from {{team.name}}. "
        "About {{ topic }}: the refund is on its way.",
    )
    SavedReply.objects.create(
        team=teams["tech-support"], shortcut="reboot", title="Reboot", body="Try a reboot."
    )
    alice = factories.logged_in(people["alice"])
    listed = alice.get(reverse("conversation-saved-replies", args=[hop.pk])).json()["replies"]
    assert [r["shortcut"] for r in listed] == ["refund"]  # not another team's
    filled = alice.post(reverse("saved-reply-fill", args=[hop.pk, team_reply.pk])).json()
    assert filled["text"] == (
        "Hi Dana, Alice here from Billing specialists. About a double charge: the refund is on "
        "its way."
    )
    assert filled["problems"] == []
    sent = alice.post(
        reverse("conversation-messages", args=[hop.pk]),
        {"body": filled["text"], "client_id": "m-1", "saved_reply": str(team_reply.pk)},
    )
    assert sent.status_code == 201
    # A retry of the same message doesn't count twice.
    alice.post(
        reverse("conversation-messages", args=[hop.pk]),
        {"body": filled["text"], "client_id": "m-1", "saved_reply": str(team_reply.pk)},
    )
    team_reply.refresh_from_db()
    assert team_reply.use_count == 1 and team_reply.last_used_at is not None

    hop.customer_name = ""
    hop.save()
    nameless = alice.post(reverse("saved-reply-fill", args=[hop.pk, team_reply.pk])).json()
    assert "{{ customer.first_name }}" in nameless["text"]
    assert [p["variable"] for p in nameless["problems"]] == ["customer.first_name"]
    refused = alice.post(
        reverse("conversation-messages", args=[hop.pk]),
        {"body": nameless["text"], "client_id": "m-2"},
    )
    assert refused.status_code == 400
    assert "Fill in or remove {{ customer.first_name }}" in refused.content.decode()
    assert not Message.objects.filter(client_id="m-2").exists()


def test_saved_replies_page_rights(people, teams):
    alice = factories.logged_in(people["alice"])
    page = reverse("saved-replies")
    created = alice.post(
        page,
        {
            "shortcut": "hello",
            "title": "Hello",
            "body": "Hi {{ customer.name }}!",
            "scope": "personal",
        },
    )
    assert created.status_code == 302
    mine = SavedReply.objects.get(shortcut="hello")
    assert mine.owner == people["alice"]
    unknown = alice.post(
        page,
        {"shortcut": "bad", "title": "Bad", "body": "Hi {{ customer.email }}", "scope": "personal"},
    )
    assert unknown.status_code == 400 and "Unknown variable" in unknown.content.decode()
    # Agents don't manage team replies; supervisors do.
    team = teams["billing-specialist"]
    denied = alice.post(page, {"shortcut": "t", "title": "T", "body": "x", "scope": str(team.pk)})
    assert denied.status_code == 404 and not SavedReply.objects.filter(shortcut="t").exists()
    sam = factories.logged_in(people["sam"])
    assert (
        sam.post(
            page, {"shortcut": "t", "title": "T", "body": "x", "scope": str(team.pk)}
        ).status_code
        == 302
    )
    # Someone else's personal reply can't be edited or deleted.
    bob = factories.logged_in(people["bob"])
    assert bob.get(reverse("saved-reply-edit", args=[mine.pk])).status_code == 404
    assert bob.post(reverse("saved-reply-delete", args=[mine.pk])).status_code == 404
    assert alice.post(reverse("saved-reply-delete", args=[mine.pk])).status_code == 302
    assert not SavedReply.objects.filter(pk=mine.pk).exists()
    listing = sam.get(page + "?sort=use")
    assert listing.status_code == 200 and "/t</code>" in listing.content.decode()


def test_links_are_safe_and_user_html_is_text(hop, people):
    alice = factories.logged_in(people["alice"])
    response = alice.post(
        reverse("conversation-messages", args=[hop.pk]),
        {
            "body": "See https://example.com/help?a=1&b=2\n<b>bold</b> javascript:alert(1) "
            '<a href="javascript:alert(2)">x</a>',
            "client_id": "l-1",
        },
    )
    html = response.content.decode()
    assert (
        '<a href="https://example.com/help?a=1&amp;b=2" target="_blank" '
        'rel="noopener noreferrer nofollow">' in html
    )
    assert "<br>" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert '<a href="javascript' not in html and "&lt;a href" in html


def test_admin_manages_saved_replies_and_lists_attachments_read_only(hop, people, teams):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "r@example.com", "pw-admin-123")
    client = Client()
    client.force_login(admin)
    add = reverse("admin:handoffs_savedreply_add")
    team = teams["billing-specialist"]
    bad = client.post(add, {"shortcut": "x", "title": "X", "body": "{{ nope }}", "team": team.pk})
    assert bad.status_code == 200 and "Unknown variable" in bad.content.decode()
    both = client.post(
        add,
        {"shortcut": "y", "title": "Y", "body": "y", "team": team.pk, "owner": people["alice"].pk},
    )
    assert both.status_code == 200 and "not both" in both.content.decode()
    ok = client.post(
        add, {"shortcut": "thanks", "title": "Thanks", "body": "Thanks!", "team": team.pk}
    )
    assert ok.status_code == 302 and SavedReply.objects.filter(shortcut="thanks").exists()
    agent_upload(factories.logged_in(people["alice"]), hop, images.png(), "a.png")
    attachment = Attachment.objects.get()
    listing = client.get(reverse("admin:handoffs_attachment_changelist"))
    assert listing.status_code == 200 and "a.png" in listing.content.decode()
    page = client.get(reverse("admin:handoffs_attachment_change", args=[attachment.pk]))
    assert reverse("agent-file", args=[attachment.public_id]) in page.content.decode()
    assert client.get(reverse("admin:handoffs_attachment_add")).status_code == 403
