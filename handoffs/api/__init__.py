"""The bot-facing handoff API: explicit intake (``POST /api/v1/handoffs``), a handoff's
state, the conversations channel, and bots' keys.

Answers in the memory API's wire error shape through ``memory.http.bot_api``. May
import ``lifecycle`` and everything below it; never ``desk``, ``customers`` or
``supervision``.
"""
