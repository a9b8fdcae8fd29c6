"""The lifecycle's domain errors; each carries the wire status and code of its answer."""

from __future__ import annotations

from ..memory.base import WireError


class HandoffError(WireError):
    """A domain rule refused the operation; ``status``/``code`` shape the API answer."""

    status = 400
    code = "INVALID_REQUEST"


class HandoffNotFound(HandoffError):
    status = 404
    code = "NOT_FOUND"


class HandoffConflict(HandoffError):
    status = 409
    code = "ALREADY_ACCEPTED"


class AgentAtCapacity(HandoffError):
    status = 409
    code = "AT_CAPACITY"


class NotReassignable(HandoffError):
    status = 409
    code = "NOT_REASSIGNABLE"


class BotMuted(HandoffError):
    status = 409
    code = "BOT_MUTED"


class ConversationClosed(HandoffError):
    status = 410
    code = "CONVERSATION_CLOSED"
