"""The demo bot: receives the console's signed webhooks and answers through the
conversations API, so ``make run`` shows the whole loop (bot → human → back to the bot).

Standard library (``http.server``) for the webhook endpoint and httpx for the answers;
no Django. Run by ``manage.py demo_bot`` (which ``manage.py demo`` starts). It answers
each customer message of a conversation it owns (after a hand back) with a short reply
that quotes it, stays quiet while the customer waits for a person, and escalates again
when the customer asks for a person ("agent", "human", ...).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

logger = logging.getLogger(__name__)

SIGNATURE_TOLERANCE_S = 300
ASKS_FOR_PERSON = re.compile(
    r"\b(agent|human|person|someone|representative|operator)\b", re.IGNORECASE
)
QUOTE_CHARS = 200


def verify_signature(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """Check ``X-Handoff-Signature: t=<unix>,v1=<hex>`` (HMAC-SHA256 of "<t>.<body>")."""
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(parts["t"])
        signature = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > SIGNATURE_TOLERANCE_S:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), signature)


def reply_to(text: str) -> str:
    quoted = text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"
    if ASKS_FOR_PERSON.search(text):
        return (
            "Of course: I've asked a colleague to join. You'll see your place in the "
            "queue at the top of the chat."
        )
    return (
        f"Thanks, I got your message: “{quoted}”. I'm the demo assistant and I have the "
        "notes from your chat with our team. Type “agent” any time to talk to a person again."
    )


@dataclass
class DemoBot:
    """What the bot does with one webhook; the HTTP server around it is ``serve``."""

    console_url: str
    key: str
    secret: str
    name: str = "tier1-bot"
    team: str = "billing-specialist"
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))
    answered: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def handle(self, event: dict[str, Any]) -> None:
        """Act on one verified webhook payload."""
        if event.get("event") != "message.created":
            return
        message = event.get("message") or {}
        if message.get("sender") != "customer":
            return
        if event.get("handoff_status") == "waiting":
            return  # a person is on the way; the console tells the customer where they stand
        conversation_id = event["conversation_id"]
        text = str(message.get("body", ""))
        response = self.client.post(
            f"{self.console_url}/api/v1/conversations/{conversation_id}/messages",
            json={
                "sender": "bot",
                "client_id": f"demo-bot-reply-{message.get('seq')}",
                "body": reply_to(text),
            },
            headers=self.headers(),
        )
        if response.status_code >= 300:
            logger.warning("demo bot: answer refused %s %s", response.status_code, response.text)
            return
        self.answered.append(conversation_id)
        if ASKS_FOR_PERSON.search(text):
            self.escalate(event, text)

    def escalate(self, event: dict[str, Any], text: str) -> None:
        response = self.client.post(
            f"{self.console_url}/api/v1/handoffs",
            json={
                "customer": event["customer"],
                "source_session_id": f"demo-{event['conversation_id'][:8]}-"
                f"{event['message'].get('seq')}",
                "from_agent": self.name,
                "to_agent": self.team,
                "summary": f"The customer asked for a person again after the hand back: {text}",
                "reason": "Asked for a person",
                "channel": "web",
            },
            headers=self.headers(),
        )
        if response.status_code >= 300:
            logger.warning(
                "demo bot: escalation refused %s %s", response.status_code, response.text
            )


def serve(bot: DemoBot, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server for the bot's webhooks (``POST`` any path); call ``serve_forever``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1_000_000))
            signature = self.headers.get("X-Handoff-Signature", "")
            if not verify_signature(bot.secret, signature, body):
                self._answer(401, b'{"error": "bad signature"}')
                return
            try:
                event = json.loads(body)
            except ValueError:
                self._answer(400, b'{"error": "not JSON"}')
                return
            self._answer(200, b'{"ok": true}')
            # Answer after acknowledging: the console's worker shouldn't wait on us.
            threading.Thread(target=self._handle, args=(event,), daemon=True).start()

        def _handle(self, event: dict[str, Any]) -> None:
            try:
                bot.handle(event)
            except (httpx.HTTPError, KeyError, TypeError):
                logger.exception("demo bot: handling %s failed", event.get("event"))

        def _answer(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            logger.debug("demo bot: " + format, *args)

    return ThreadingHTTPServer((host, port), Handler)
