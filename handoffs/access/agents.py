"""People's rights: what an agent, supervisor or admin may see and do, now.

Asked by the desk's and the floor's pages and htmx endpoints, by their sockets when they
open and whenever ``rights.changed`` rings them, by each pushed chat frame
(``ConversationView.admits``) and by the broadcast fan-out (``queue_audience``). Every
answer reads the current rows, so it changes the moment a hop, a team or a role does.

The rules (the README's "Security model" has them as a table):

- Only an active user with a console profile (``Agent``) has any right here.
- **Supervisors** (role supervisor or superuser) see every queue, card and conversation,
  live; admins (staff) may supervise the floor as well.
- **The queue**: a waiting hop is seen (and may be accepted) by the agents of its team,
  unless it is assigned to one agent (``human:<username>``, a transfer to a person, a
  supervisor's reassign): then only by that agent (and supervisors).
- **A card** follows the queue while the hop waits; once accepted it is its owner's.
- **A conversation** is its owner's while they own it (live, read and write). When they
  pass it on (transfer, hand back) or resolve it, its **former owner** keeps a
  read-only view of the transcript up to the moment they closed it (``until_seq``):
  nothing written afterwards, by anyone, reaches them, notes included. An agent a
  supervisor moved a conversation away from keeps nothing of it; nor does an agent who
  merely saw the card.
- **History** (``history_filter``, ``transcript_view``): an agent reads, read-only, the
  closed hops of the teams they serve and the hops they closed themselves, each up to the
  moment it closed (``handover_seq``); supervisors every closed hop, whole.
- **Search and the customer's past** (``search_filters``): what an agent may find is their
  history, the conversations they hold and the cards in their queue (the latter two read
  whole); the rules go into the search's SQL as compiled ``Q`` conditions
  (``handoffs.search.index``), plus ``HANDOVER_SEQ_SQL`` for the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Max, Q

from ..compiled import Compiled
from ..models import Agent, Handoff, Message, Status, Team

CLOSED = (Status.RESOLVED, Status.TRANSFERRED, Status.HANDED_BACK)


def active(agent: Agent | None) -> bool:
    return agent is not None and agent.user.is_active


def sees_every_queue(agent: Agent) -> bool:
    """Supervisors (and superusers) see every team's queue, card and conversation."""
    return active(agent) and agent.is_supervisor


def may_supervise(agent: Agent | None) -> bool:
    """The floor, reassigning and the reports: supervisors and admins."""
    return active(agent) and agent.can_supervise


def served_team_ids(agent: Agent) -> list[int]:
    """The teams whose queues this agent serves (``Team.objects.served_by``: their own,
    plus the default queue while no plain agent is a member of it)."""
    return list(Team.objects.served_by(agent).values_list("pk", flat=True))


def served_teams_many(agents: list[Agent]) -> dict[int, list[tuple[int, str]]]:
    """``served_team_ids`` for several agents in two queries (sockets opening together):
    ``{agent id: [(team id, slug), ...]}``, by the same rule as ``Team.objects.served_by``
    (their own teams, plus the default queue while no plain agent is a member of it)."""
    if not agents:
        return {}
    memberships = _memberships([a.pk for a in agents])
    teams = {
        pk: (slug, is_default and not has_agents)
        for pk, slug, is_default, has_agents in _teams_or_default(
            sorted({t for _a, t in memberships})
        )
    }
    fallback = [pk for pk, (_slug, open_to_all) in teams.items() if open_to_all]
    own: dict[int, set[int]] = {a.pk: set() for a in agents}
    for agent_id, team_id in memberships:
        own[agent_id].add(team_id)
    return {
        pk: [(t, teams[t][0]) for t in sorted(team_ids | set(fallback)) if t in teams]
        for pk, team_ids in own.items()
    }


# Compiled once (``handoffs.compiled``): a batch of connects runs them with its own ids.
_memberships = Compiled(
    lambda agent_ids: Team.agents.through.objects.filter(agent_id__in=agent_ids).values_list(
        "agent_id", "team_id"
    )
)
_teams_or_default = Compiled(
    lambda team_ids: (
        Team.objects.with_has_agents()
        .filter(Q(pk__in=team_ids) | Q(is_default=True, has_agents=False))
        .values_list("pk", "slug", "is_default", "has_agents")
    )
)


def serves_team(agent: Agent, team_id: int | None) -> bool:
    return team_id is not None and team_id in served_team_ids(agent)


# ---------------------------------------------------------------- the queue and cards
def queue_filter(agent: Agent, team_ids: list[int] | None = None) -> Q:
    """The waiting hops this agent's queue shows (a filter on ``Handoff``); ``team_ids``:
    ``served_team_ids(agent)`` when the caller already has them."""
    waiting = Q(status=Status.WAITING, team__isnull=False)
    if not active(agent):
        return Q(pk__in=[])
    if sees_every_queue(agent):
        return waiting
    team_ids = served_team_ids(agent) if team_ids is None else team_ids
    return waiting & (Q(assigned_to=agent) | Q(team_id__in=team_ids, assigned_to=None))


def in_queue_of(agent: Agent, hop: Handoff) -> bool:
    """Whether ``hop`` is in this agent's queue now (the same rule as ``queue_filter``)."""
    if not active(agent) or hop.status != Status.WAITING or hop.team_id is None:
        return False
    if sees_every_queue(agent) or hop.assigned_to_id == agent.pk:
        return True
    return hop.assigned_to_id is None and serves_team(agent, hop.team_id)


def skill_gap(agent: Agent, hop: Handoff) -> list[str]:
    """The skills ``hop`` requires that ``agent`` lacks while they still count: until the
    team's ``skill_fallback_secs`` have passed since the hop arrived (0: always count).
    Supervisors and a hop's assignee have no gap (it was given to them)."""
    required = set(hop.required_skills or [])
    if not required or sees_every_queue(agent) or hop.assigned_to_id == agent.pk:
        return []
    team = hop.team if hop.team_id is not None else None
    if team is not None and team.skill_fallback_secs:
        from django.utils import timezone

        waited = (timezone.now() - hop.created_at).total_seconds()
        if waited >= team.skill_fallback_secs:
            return []
    return sorted(required - agent.skill_set)


def may_accept(agent: Agent, hop: Handoff) -> bool:
    """In the queue; in an offer-routed team (``Team.routing_mode == "offer"``) a plain
    agent accepts only the hop offered to them (an assigned hop is its assignee's); in a
    pull team, only with the hop's required skills until the skill fallback is due."""
    if not in_queue_of(agent, hop):
        return False
    if sees_every_queue(agent) or hop.assigned_to_id is not None:
        return True
    team = hop.team if hop.team_id is not None else None
    if team is not None and team.routing_mode == "offer":
        return hop.offered_to_id == agent.pk
    return not skill_gap(agent, hop)


def may_view_handoff(agent: Agent, hop: Handoff) -> bool:
    """The handoff card: while it waits, whoever has it in their queue; then its owner
    (former owners read it as it was when they closed it); supervisors always."""
    if not active(agent):
        return False
    if sees_every_queue(agent):
        return True
    if hop.status == Status.WAITING:
        return in_queue_of(agent, hop)
    return hop.accepted_by_id == agent.pk and hop.status in (Status.ACCEPTED, *CLOSED)


@dataclass(frozen=True)
class QueueAudience:
    """Who a queue row is pushed to: the decision ``realtime.broadcast`` maps to groups.

    ``team``: every queue socket of that team (supervisors watch every team's group);
    ``assignee_user_id`` and ``supervisors``: an assigned hop's row goes only to its
    assignee and to supervisors; ``gone_teams`` / ``gone_users``: who must drop the row.
    """

    row_team: str | None
    assignee_user_id: int | None
    supervisors: bool
    gone_teams: tuple[str, ...]
    gone_users: tuple[int, ...]


def queue_audience(
    hop: Handoff, *, old_team: str | None = None, old_user_id: int | None = None
) -> QueueAudience:
    """Where this hop's queue row goes now, by the same rule as ``in_queue_of``.

    ``old_team`` / ``old_user_id``: where it was before a reassign (they drop it).
    """
    team = hop.team.slug if hop.team_id is not None else None
    teams = tuple(sorted({t for t in (team, old_team) if t}))
    assignee = hop.assigned_to.user_id if hop.assigned_to_id is not None else None
    if hop.status != Status.WAITING or team is None:
        users = tuple(sorted({u for u in (assignee, old_user_id) if u}))
        return QueueAudience(None, None, False, teams, users)
    old_users = (old_user_id,) if old_user_id and old_user_id != assignee else ()
    if assignee is not None:
        # Onto the assignee's and the supervisors' screens; off the team's only if it
        # was there (before a reassign): a new assigned hop never rang the team.
        return QueueAudience(None, assignee, True, teams if old_team else (), old_users)
    return QueueAudience(team, None, False, tuple(t for t in teams if t != team), old_users)


# ---------------------------------------------------------------- conversations
@dataclass(frozen=True)
class ConversationView:
    """What one agent may see of one hop's conversation, decided once per page or socket.

    ``live``: receives what is written from now on (owner, supervisor); ``may_write``:
    speaks and closes it (the owner of an accepted hop); ``until_seq``: a former owner
    reads only messages up to this sequence number.
    """

    handoff_id: int
    conversation_id: int | None
    live: bool
    may_write: bool
    every_hop: bool = False
    until_seq: int | None = None

    def admits(self, *, handoff_id: int | None, seq: int | None) -> bool:
        """Whether one pushed chat frame (a message of ``handoff_id``) may reach this view."""
        if not self.live:
            return False
        if self.every_hop:
            return True
        return handoff_id == self.handoff_id


def handover_seq(hop: Handoff) -> int:
    """The last message of the conversation its owner saw before closing ``hop``."""
    if hop.conversation_id is None:
        return 0
    last = Message.objects.filter(conversation_id=hop.conversation_id, handoff=hop).aggregate(
        last=Max("seq")
    )["last"]
    if last is None and hop.closed_at is not None:
        last = Message.objects.filter(
            conversation_id=hop.conversation_id, created_at__lte=hop.closed_at
        ).aggregate(last=Max("seq"))["last"]
    return last or 0


def conversation_view(agent: Agent | None, hop: Handoff) -> ConversationView | None:
    """The agent's view of ``hop``'s conversation page and socket, or None (404 / refused)."""
    if not active(agent):
        return None
    owner = hop.accepted_by_id == agent.pk
    if sees_every_queue(agent):
        return ConversationView(
            hop.pk,
            hop.conversation_id,
            live=True,
            may_write=owner and hop.status == Status.ACCEPTED,
            every_hop=True,
        )
    if owner and hop.status == Status.ACCEPTED:
        return ConversationView(hop.pk, hop.conversation_id, live=True, may_write=True)
    if owner and hop.status in CLOSED:
        return ConversationView(
            hop.pk, hop.conversation_id, live=False, may_write=False, until_seq=handover_seq(hop)
        )
    return None


def _name(agent: Agent | None) -> str:
    if agent is None:
        return "someone else"
    return agent.user.get_full_name() or agent.user.get_username()


def _target(to_agent: str) -> str:
    if to_agent.startswith("human:"):
        named = Agent.objects.select_related("user").filter(user__username=to_agent[6:]).first()
        return _name(named) if named else to_agent[6:]
    return to_agent


def why_not(agent: Agent | None, hop: Handoff | None) -> str:
    """Why this agent no longer sees ``hop`` live: the sentence their page shows."""
    if hop is None:
        return "This handoff no longer exists."
    if not active(agent):
        return "Your account was deactivated."
    if hop.accepted_by_id == agent.pk and hop.status in (Status.TRANSFERRED, Status.HANDED_BACK):
        following = hop.next_hops.order_by("created_at", "pk").first()
        to = _target(following.to_agent if following else "")
        verb = "handed back to" if hop.status == Status.HANDED_BACK else "passed to"
        return (
            f"This conversation was {verb} {to}. You can read it up to that moment; "
            "nothing written afterwards reaches you."
        )
    if hop.accepted_by_id == agent.pk and hop.status == Status.RESOLVED:
        return "This conversation was resolved; nothing written afterwards reaches you."
    if hop.status == Status.ACCEPTED:
        if hop.accepted_by_id == agent.pk:
            return ""
        return f"This conversation is now {_name(hop.accepted_by)}'s."
    if hop.status == Status.WAITING and hop.assigned_to_id not in (None, agent.pk):
        return f"This handoff was assigned to {_name(hop.assigned_to)}."
    if hop.status == Status.WAITING and in_queue_of(agent, hop):
        return "This conversation went back to the queue."
    if hop.status == Status.WAITING:
        return "This handoff is no longer in your queues."
    return f"This handoff is {hop.get_status_display().lower()}."


# ---------------------------------------------------------------- history and search
# An agent reads the closed hops of the teams they serve (their team's history) and the
# hops they closed themselves, each up to the moment it closed (``handover_seq``), the
# same horizon a former owner has. Supervisors read every hop, whole.
def history_filter(agent: Agent | None, team_ids: list[int] | None = None) -> Q:
    """The closed hops this agent may open as a read-only transcript (on ``Handoff``)."""
    closed = Q(status__in=CLOSED)
    if not active(agent):
        return Q(pk__in=[])
    if sees_every_queue(agent):
        return closed
    team_ids = served_team_ids(agent) if team_ids is None else team_ids
    return closed & (Q(accepted_by=agent) | Q(team_id__in=team_ids))


def findable_filter(agent: Agent | None) -> Q:
    """The hops whose text this agent may find by search (on ``Handoff``): their history,
    the conversations they hold, the waiting hops in their queue; supervisors every
    hop a person handles (bot-to-bot hops have no conversation here)."""
    return search_filters(agent)[0]


def whole_filter(agent: Agent | None) -> Q:
    """The hops through which this agent sees their conversation whole, nothing cut off
    at a handover: the conversations they hold and the cards in their queue (which show
    the chat so far); for supervisors every hop. Other findable hops (``history_filter``)
    show their conversation up to ``handover_seq``."""
    return search_filters(agent)[1]


def search_filters(agent: Agent | None) -> tuple[Q, Q]:
    """``(findable_filter, whole_filter)`` together, reading the agent's teams once."""
    if not active(agent):
        return Q(pk__in=[]), Q(pk__in=[])
    if sees_every_queue(agent):
        everything = ~Q(status=Status.BOT_HOP)
        return everything, everything
    team_ids = served_team_ids(agent)
    whole = Q(status=Status.ACCEPTED, accepted_by=agent) | queue_filter(agent, team_ids)
    return history_filter(agent, team_ids) | whole, whole


# ``handover_seq`` as SQL, for queries that test a message's ``seq`` against the hop it
# is seen through without loading the hop: ``{hop}`` is the hop table's name or alias.
HANDOVER_SEQ_SQL = (
    "COALESCE((SELECT MAX(hs.seq) FROM handoffs_message hs WHERE hs.handoff_id = {hop}.id), "
    "(SELECT MAX(ht.seq) FROM handoffs_message ht WHERE ht.conversation_id = "
    "{hop}.conversation_id AND ht.created_at <= {hop}.closed_at), 0)"
)


def transcript_view(agent: Agent | None, hop: Handoff) -> ConversationView | None:
    """The read-only transcript of a closed hop (history, search results), or None.

    Supervisors read the whole conversation; an agent whose history holds the hop
    (``history_filter``) reads it up to the moment the hop closed."""
    if not active(agent) or hop.status not in CLOSED:
        return None
    if sees_every_queue(agent):
        return ConversationView(hop.pk, hop.conversation_id, live=False, may_write=False)
    if hop.accepted_by_id != agent.pk and not serves_team(agent, hop.team_id):
        return None
    return ConversationView(
        hop.pk, hop.conversation_id, live=False, may_write=False, until_seq=handover_seq(hop)
    )


# ---------------------------------------------------------------- files and saved replies
def may_see_message(agent: Agent | None, message: Message) -> bool:
    """Whether this agent may see ``message`` (and so its attachment) now: by the rule of
    the conversation page (a hop of its conversation they may view: live, or as a former
    owner up to ``until_seq``) or of the card (a waiting hop in their queue shows the
    chat so far). Private notes follow the same rule: agents see them, customers never."""
    if not active(agent):
        return False
    if sees_every_queue(agent):
        return True
    hops = Handoff.objects.filter(conversation_id=message.conversation_id).filter(
        Q(accepted_by=agent) | Q(status=Status.WAITING) | history_filter(agent)
    )
    for hop in hops.select_related("team"):
        if hop.status == Status.WAITING:
            if in_queue_of(agent, hop):
                return True
            continue
        # A closed hop of their history (their team's, or one they held) shows the
        # conversation read-only up to the moment it closed, files included.
        view = transcript_view(agent, hop) if hop.status in CLOSED else None
        view = view or conversation_view(agent, hop)
        if view is None:
            continue
        if view.until_seq is None or message.seq <= view.until_seq:
            return True
    return False


def saved_reply_filter(agent: Agent) -> Q:
    """The saved replies this agent may use: their own and their teams' (every team's
    for supervisors). A filter on ``SavedReply``."""
    if not active(agent):
        return Q(pk__in=[])
    if sees_every_queue(agent):
        return Q(owner=agent) | Q(team__isnull=False)
    return Q(owner=agent) | Q(team_id__in=served_team_ids(agent))


def may_manage_saved_reply(
    agent: Agent | None, *, owner_id: int | None, team_id: int | None
) -> bool:
    """Edit or delete: a personal reply by its owner; a team's by supervisors and admins."""
    if not active(agent):
        return False
    if owner_id is not None:
        return owner_id == agent.pk
    return team_id is not None and may_supervise(agent)
