"""The customer's chat socket: whoever holds the unguessable link, while it is open."""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from ..models import Conversation, Message, Sender
from ..realtime import broadcast
from ..realtime.consumers import ForwardingConsumer, is_typing
from . import status


@database_sync_to_async
def _open_conversation(token: str) -> Conversation | None:
    return Conversation.objects.filter(token=token, closed_at=None).first()


class CustomerConsumer(ForwardingConsumer):
    """The customer's web chat: whoever holds the unguessable link, while it is open.

    Forwards messages, typing and the status panel (queue position, wait, who's there);
    on (re)connect sends a fresh snapshot of both from the database.
    """

    conversation: Conversation | None = None

    async def connect(self) -> None:
        self.conversation = await _open_conversation(self.scope["url_route"]["kwargs"]["token"])
        if self.conversation is None:
            await self.close(code=4404)
            return
        self.group = broadcast.customer_group(self.conversation.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await database_sync_to_async(broadcast.customer_socket_opened)(self.conversation.pk, 1)
        await self.accept()
        await self.send(text_data=await self.snapshot())

    @database_sync_to_async
    def snapshot(self) -> str:
        messages = (
            Message.objects.filter(conversation=self.conversation)
            .exclude(sender=Sender.NOTE)
            .order_by("seq")
        )
        html = render_to_string(
            "handoffs/chat.html#messages",
            {"chat_messages": messages, "audience": "customer", "oob": True},
        )
        return html + status.render_status(status.customer_status(self.conversation), oob=True)

    async def disconnect(self, code: int) -> None:
        if self.conversation is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await database_sync_to_async(broadcast.customer_socket_opened)(self.conversation.pk, -1)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if is_typing(text_data) and self.typing_allowed():
            await broadcast.typing(
                conversation_id=self.conversation.pk, who="customer", label="Customer"
            )

    async def chat_message(self, event: dict) -> None:
        await self.send(text_data=event["html"])

    async def chat_typing(self, event: dict) -> None:
        await self.send(text_data=event["html"])

    async def conversation_closed(self, event: dict) -> None:
        await self.close(code=4410)
