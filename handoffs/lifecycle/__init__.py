"""Every write of a hop and its conversation. Nothing else changes a hop's status.

State machine of one hop (a ``Handoff`` row)::

                 intake                 accept (one conditional UPDATE)
    bot/agent ───────────> waiting ───────────────────────────> accepted
                             │  ▲ reassign (supervisor):          │ reassign: new owner
                             │  └ assigned to one agent           │
                             │                                    ├─ resolve ──> resolved
    bot_hop (to a registered │                                    ├─ transfer ─> transferred ─┐
    bot: recorded, never     │                                    └─ hand back > handed_back ─┤
    queued)                  │                                                                │
                             └──────── the next hop of the same chain and conversation <──────┘

The conversation (the customer's chat) spans the chain: created with the first hop
queued for people, the bot muted while a person owns it, closed on resolve, reopened
if a later hop continues the chain.

Invariants:
- each public function is one transaction and writes an ``Event`` row for every change;
- accept is ``UPDATE ... WHERE status = 'waiting'`` checked by its row count: exactly one
  winner on SQLite and PostgreSQL, everyone else gets ``HandoffConflict`` (409);
- intake is idempotent (``intake.dedupe_key`` on a unique column);
- a message is committed with its ``seq`` and ``client_id`` before it is acknowledged,
  and a retried send returns the stored one;
- broadcasts are sent after commit (``realtime.broadcast.*_on_commit``); webhooks and
  memory copies are queued in the same transaction and delivered by ``delivery``;
- slow I/O (the memory server) never runs inside these transactions.

Opening hours (``hours``) mark what arrives while a team is closed and pause the SLA
timers; customer satisfaction (``satisfaction``) is asked on resolve and stored with the
conversation and its last hop.

A chat file is a message too (``attachments``: typed from its bytes, images re-encoded
without EXIF, stored through Django's storage API with the message or not at all);
saved replies (``saved_replies``) are filled on the server and counted per use, in the
message's transaction.

Routing (``offers``): a team in ``offer`` mode offers each waiting hop to one free
agent (the hop's ``offered_to`` column, claimed by a conditional UPDATE); accept then
also requires holding the offer. End of shift (``shifts``) hands each open conversation
over as a transfer with a drafted handover and a required next step.

Modules import downward only (import-linter): ``shifts`` → ``timers`` | ``endings`` →
``satisfaction`` → ``accept`` → ``intake`` → ``offers`` → ``messages`` → ``estimate`` |
``presence`` | ``hours`` → ``errors``. The package may
import ``realtime``, ``delivery``, ``memory`` and ``models``.
"""
