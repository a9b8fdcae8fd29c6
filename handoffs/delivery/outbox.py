"""The durable outboxes: memory copies of the chat and webhooks to bots.

Rows are written in the same transaction as the change that caused them and applied
after commit: memory writes right away by the process's kicker thread (``Kicker``,
started by ``kick_on_commit``), webhooks and anything that failed or was left behind by
the worker (``manage.py run_worker``). Both may run in several processes at once: a row is claimed
with a conditional UPDATE (a lease on ``next_attempt_at``), and memory writes of one
conversation are applied strictly in order: a row is only claimed when no earlier row
of its conversation is still pending.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import timedelta

import httpx
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from ..memory import get_store
from ..memory.base import MemoryError as StoreError
from ..models import Handoff, MemoryWrite, OutboxStatus, WebhookDelivery

logger = logging.getLogger(__name__)

# A claimed row is leased for LEASE and the lease is renewed every LEASE / 3 while the
# process that claimed it lives (``LeaseKeeper``): rows claimed by a process that died
# are taken over by another within LEASE (issue 19: 185 writes waited ~50 s).
LEASE = timedelta(seconds=10)
MAX_WEBHOOK_ATTEMPTS = 10
MAX_MEMORY_ATTEMPTS = 50
WEBHOOK_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
SIGNATURE_HEADER = "X-Handoff-Signature"
KICK_DELAY_S = 0.1


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s ... capped at one hour."""
    return timedelta(seconds=min(2 ** max(attempts - 1, 0), 3600))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` (verify in constant time)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _claim(model, pk: int, now) -> bool:
    claimed = (
        model.objects.filter(pk=pk, status=OutboxStatus.PENDING, next_attempt_at__lte=now).update(
            next_attempt_at=now + LEASE
        )
        == 1
    )
    if claimed:
        leases.hold(model, pk)
    return claimed


class LeaseKeeper:
    """Renews the leases of the rows this process is working on, every LEASE / 3, on one
    daemon thread (started with the first claim). A row is held from its claim until its
    outcome is written (``release``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[type, set[int]] = {}
        self._thread: threading.Thread | None = None

    def hold(self, model: type, pk: int) -> None:
        with self._lock:
            self._held.setdefault(model, set()).add(pk)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbox-leases", daemon=True)
                self._thread.start()

    def release(self, model: type, pk: int) -> None:
        with self._lock:
            self._held.get(model, set()).discard(pk)

    def held(self) -> dict[type, set[int]]:
        with self._lock:
            return {model: set(pks) for model, pks in self._held.items() if pks}

    def renew(self) -> int:
        """Extend every held row's lease now; returns how many rows were renewed."""
        renewed = 0
        for model, pks in self.held().items():
            renewed += model.objects.filter(pk__in=pks, status=OutboxStatus.PENDING).update(
                next_attempt_at=timezone.now() + LEASE
            )
        return renewed

    def _run(self) -> None:
        from django.db import connections

        while True:
            time.sleep(LEASE.total_seconds() / 3)
            try:
                if self.held():
                    self.renew()
            except Exception:  # noqa: BLE001 - the database is away: the lease may lapse
                logger.warning("renewing outbox leases failed", exc_info=True)
            finally:
                connections.close_all()


leases = LeaseKeeper()


# ---------------------------------------------------------------- memory writes
def _session_for(handoff: Handoff) -> str:
    """The human's memory session for this hop, started if it is missing or ended."""
    if handoff.human_session_id:
        return handoff.human_session_id
    agent_name = handoff.accepted_by.memory_name if handoff.accepted_by else "human"
    session = get_store().start_session(
        agent_id=handoff.customer,
        metadata={"agent": agent_name, "handoff_id": str(handoff.public_id), "channel": "console"},
    )["session"]
    Handoff.objects.filter(pk=handoff.pk).update(human_session_id=session["id"])
    handoff.human_session_id = session["id"]
    return session["id"]


def _apply(write: MemoryWrite) -> None:
    store = get_store()
    handoff = write.handoff
    payload = dict(write.payload)
    if write.operation == "end_session":
        if handoff is not None and handoff.human_session_id:
            store.end_session(session_id=handoff.human_session_id, summary=payload.get("summary"))
        return
    fill = payload.pop("fill_memory_id_of", None)
    if handoff is not None and handoff.status != "waiting":
        payload["session_id"] = _session_for(handoff)
    result = store.store(**payload)
    if result.get("session_state") == "ended" and handoff is not None:
        # The server ended the session by itself (idle): carry on in a fresh one. The
        # memory is stored either way; only later writes move to the new session.
        Handoff.objects.filter(pk=handoff.pk).update(human_session_id="")
    write.result_id = result["memory"]["id"]
    if fill:
        Handoff.objects.filter(pk=fill, memory_id="").update(memory_id=write.result_id)


def apply_memory_writes(limit: int = 200) -> int:
    """Apply due memory writes in order; returns how many were applied.

    Each round fetches the first due write of every conversation (one query) and applies
    them; a conversation's next write is due in the next round, once its predecessor is
    done. A failed write blocks its conversation for the rest of the pass.
    """
    applied = 0
    blocked: set[int] = set()
    earlier_pending = MemoryWrite.objects.filter(
        conversation=OuterRef("conversation"), pk__lt=OuterRef("pk"), status=OutboxStatus.PENDING
    )
    while applied < limit:
        now = timezone.now()
        candidates = list(
            MemoryWrite.objects.filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
            .exclude(conversation__in=blocked)
            .exclude(Exists(earlier_pending))
            .select_related("handoff__accepted_by__user")
            .order_by("pk")[: limit - applied]
        )
        progress = False
        for candidate in candidates:
            if candidate.conversation_id in blocked or not _claim(MemoryWrite, candidate.pk, now):
                continue
            try:
                _apply(candidate)
            except StoreError as exc:
                leases.release(MemoryWrite, candidate.pk)
                attempts = candidate.attempts + 1
                MemoryWrite.objects.filter(pk=candidate.pk).update(
                    attempts=attempts,
                    last_error=f"{exc.code}: {exc.message}"[:2000],
                    next_attempt_at=timezone.now() + backoff(attempts),
                    status=OutboxStatus.FAILED
                    if attempts >= MAX_MEMORY_ATTEMPTS
                    else OutboxStatus.PENDING,
                )
                if candidate.conversation_id is None:
                    return applied  # unordered writes: the store is failing, stop here
                blocked.add(candidate.conversation_id)
                continue
            except BaseException:
                leases.release(MemoryWrite, candidate.pk)  # the lease lapses: retried
                raise
            leases.release(MemoryWrite, candidate.pk)
            MemoryWrite.objects.filter(pk=candidate.pk).update(
                status=OutboxStatus.DONE,
                result_id=candidate.result_id,
                attempts=candidate.attempts + 1,
            )
            applied += 1
            progress = True
        if not progress:
            break
    return applied


# ---------------------------------------------------------------- webhooks
def _deliver(delivery: WebhookDelivery, client: httpx.Client) -> tuple[bool, int | None, str]:
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "handoff-console-webhooks/1",
        "X-Handoff-Event": delivery.event,
        "X-Handoff-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: sign(delivery.bot.webhook_secret, timestamp, body),
    }
    try:
        response = client.post(delivery.bot.callback_url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return False, None, f"{exc.__class__.__name__}: {exc}"[:2000]
    if 200 <= response.status_code < 300:
        return True, response.status_code, ""
    return False, response.status_code, response.text[:2000]


def deliver_webhooks(limit: int = 50, client: httpx.Client | None = None) -> int:
    """Deliver due webhooks (oldest first); returns how many succeeded."""
    delivered = 0
    own_client = client is None
    client = client or httpx.Client(timeout=WEBHOOK_TIMEOUT)
    try:
        for _ in range(limit):
            now = timezone.now()
            candidate = (
                WebhookDelivery.objects.filter(
                    status=OutboxStatus.PENDING, next_attempt_at__lte=now
                )
                .select_related("bot")
                .order_by("next_attempt_at", "pk")
                .first()
            )
            if candidate is None:
                break
            if not _claim(WebhookDelivery, candidate.pk, now):
                continue
            try:
                ok, status_code, error = _deliver(candidate, client)
            finally:
                leases.release(WebhookDelivery, candidate.pk)
            attempts = candidate.attempts + 1
            if ok:
                WebhookDelivery.objects.filter(pk=candidate.pk).update(
                    status=OutboxStatus.DONE,
                    attempts=attempts,
                    last_status_code=status_code,
                    last_error="",
                    delivered_at=timezone.now(),
                )
                delivered += 1
            else:
                WebhookDelivery.objects.filter(pk=candidate.pk).update(
                    attempts=attempts,
                    last_status_code=status_code,
                    last_error=error,
                    next_attempt_at=timezone.now() + backoff(attempts),
                    status=(
                        OutboxStatus.FAILED
                        if attempts >= MAX_WEBHOOK_ATTEMPTS
                        else OutboxStatus.PENDING
                    ),
                )
    finally:
        if own_client:
            client.close()
    return delivered


def webhook_retry_now(*, delivery_ids: list[int]) -> int:
    """Admin action: queue deliveries for an immediate new attempt."""
    return WebhookDelivery.objects.filter(pk__in=delivery_ids).update(
        status=OutboxStatus.PENDING, next_attempt_at=timezone.now()
    )


# ---------------------------------------------------------------- kicking and the worker
class Kicker:
    """Applies memory writes right after commits, on one daemon thread per process.

    Not on the request thread: under Daphne every sync view and consumer shares one
    thread, and a store write (plus, in remote mode, a network round trip) there delays
    every other request and socket. Kicks that arrive while a pass runs make one more
    pass, so writes under load are applied in batches. What fails or is left behind when
    the process stops is retried by the worker (``manage.py run_worker``).
    ``settings.OUTBOX_KICK = "inline"`` applies on the committing thread instead (the
    test suite's default: its database transaction is invisible to another thread).
    """

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        with self._lock:
            self._idle.clear()
            self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbox-kicker", daemon=True)
                self._thread.start()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every kick so far has been worked off (tests, shutdown)."""
        return self._idle.wait(timeout)

    def settle(self, *, conversation_id: int | None, timeout: float = 1.0) -> None:
        """Read your own writes: before a card recalls a conversation's memory, wait
        (briefly) while this process's kicker still has that conversation's writes
        queued, e.g. the note of a transfer accepted right after it was made."""
        if self._idle.is_set() or conversation_id is None:
            return
        if MemoryWrite.objects.filter(
            conversation_id=conversation_id, status=OutboxStatus.PENDING, attempts=0
        ).exists():
            self.wait_idle(timeout)

    def _run(self) -> None:
        from django.db import connections

        while True:
            self._wake.wait()
            # Let the request that kicked finish its response first, and let the kicks
            # of a busy moment gather into one batch.
            time.sleep(KICK_DELAY_S)
            self._wake.clear()
            _kick()
            with self._lock:
                if not self._wake.is_set():
                    connections.close_all()  # this thread's connections, until the next kick
                    self._idle.set()


kicker = Kicker()


def _kick() -> None:
    try:
        while apply_memory_writes(limit=50):
            pass
    except Exception:  # the worker retries; a failed kick must not fail the request
        logger.exception("applying memory writes after commit failed")


def kick_on_commit() -> None:
    """Apply queued memory writes once this transaction commits (see ``Kicker``)."""
    from django.conf import settings

    if getattr(settings, "OUTBOX_KICK", "thread") == "inline":
        transaction.on_commit(_kick, robust=True)
    else:
        transaction.on_commit(kicker.kick, robust=True)
