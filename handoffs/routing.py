from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/queue/", consumers.QueueConsumer.as_asgi()),
    path("ws/handoffs/<int:pk>/", consumers.HandoffConsumer.as_asgi()),
    path("ws/conversations/<int:pk>/", consumers.ConversationConsumer.as_asgi()),
    path("ws/chat/<str:token>/", consumers.CustomerConsumer.as_asgi()),
    path("ws/floor/", consumers.FloorConsumer.as_asgi()),
]
