"""Socket routing: the WebSocket counterpart of ``urls.py`` (both are composition roots)."""

from django.urls import path

from .customers.consumers import CustomerConsumer
from .desk.consumers import (
    ConversationConsumer,
    HandoffConsumer,
    InboxConsumer,
    QueueConsumer,
)
from .desk.desk_socket import DeskConsumer
from .supervision.consumers import FloorConsumer

websocket_urlpatterns = [
    path("ws/queue/", QueueConsumer.as_asgi()),
    path("ws/handoffs/<int:pk>/", HandoffConsumer.as_asgi()),
    path("ws/conversations/<int:pk>/", ConversationConsumer.as_asgi()),
    path("ws/inbox/", InboxConsumer.as_asgi()),
    path("ws/chat/<str:token>/", CustomerConsumer.as_asgi()),
    path("ws/floor/", FloorConsumer.as_asgi()),
    path("ws/desk/", DeskConsumer.as_asgi()),
]
