"""The first message offered to an agent who accepted a hop: safe to say to a customer.

Built only from what may be said to the customer: their first name, the agent's name
and team, and the topic: the reason the bot stated when it escalated (its words, not a
summary), else the team's topic. Never from summaries, colleagues' notes or the
customer's own words: those are written for agents and read wrong when quoted back.
Each team may set its own template in admin (``Team.opener_template``) with the
variables in ``VARIABLES``; the agent edits the draft before sending it.
"""

from __future__ import annotations

import re

from django.utils.html import strip_tags

from ..models import Agent, Handoff

VARIABLES = ("customer_name", "agent_name", "team_name", "topic")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
DEFAULT = (
    "Hi {customer_name}, I'm {agent_name} from {team_name}. I can see you've been in touch "
    "about {topic}, and I have the notes from your conversation so far, so you don't need "
    "to repeat anything."
)
DEFAULT_WITHOUT_TOPIC = (
    "Hi {customer_name}, I'm {agent_name} from {team_name}. I have the notes from your "
    "conversation so far, so you don't need to repeat anything. Give me a moment to look "
    "into it."
)
INTERNAL_REASONS = {"transfer", "handback", "release"}  # set by the console, not a bot
TOPIC_MAX = 80


def template_errors(template: str) -> list[str]:
    """What is wrong with a team's opener template (unknown or malformed variables)."""
    errors = []
    for name in PLACEHOLDER.findall(template):
        if name not in VARIABLES:
            errors.append(
                f"Unknown variable {{{name}}}; use {', '.join('{' + v + '}' for v in VARIABLES)}."
            )
    stray = PLACEHOLDER.sub("", template)
    if "{" in stray or "}" in stray:
        errors.append("A { or } is not part of a variable.")
    return errors


def _clean(text: str) -> str:
    """Plain words: no markup, one line, at most ``TOPIC_MAX`` characters."""
    text = " ".join(strip_tags(text or "").split())
    text = re.sub(r"[<>{}]", "", text).strip(" .!?;:,")
    if len(text) > TOPIC_MAX:
        text = text[:TOPIC_MAX].rsplit(" ", 1)[0]
    return text


def stated_topic(handoff: Handoff) -> str:
    """The reason a bot stated for this issue (the latest in the chain), lower-cased
    unless it starts with an acronym; "" if no bot stated one."""
    reasons = (
        Handoff.objects.filter(chain_id=handoff.chain_id, hop_index__lte=handoff.hop_index)
        .exclude(reason="")
        .exclude(reason__in=INTERNAL_REASONS)
        .exclude(from_agent__startswith="human:")
        .order_by("-hop_index")
        .values_list("reason", flat=True)
    )
    topic = _clean(next(iter(reasons), ""))
    first_word = topic.split()[0] if topic else ""
    if topic and not (len(first_word) > 1 and first_word.isupper()):  # keep "VAT", "iOS"
        topic = topic[0].lower() + topic[1:]
    return topic


def render_opener(*, handoff: Handoff, agent: Agent) -> str:
    """The draft opener for ``agent`` on ``handoff`` (see the module docstring)."""
    team = handoff.team
    topic = stated_topic(handoff) or _clean(team.topic if team else "")
    template = (team.opener_template.strip() if team else "") or (
        DEFAULT if topic else DEFAULT_WITHOUT_TOPIC
    )
    if template_errors(template):
        template = DEFAULT if topic else DEFAULT_WITHOUT_TOPIC
    name = _clean(handoff.customer_name)
    values = {
        "customer_name": name.split()[0] if name else "",
        "agent_name": agent.public_name,
        "team_name": team.name if team else "support",
        "topic": topic or "your request",
    }
    text = PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    text = re.sub(r"[ \t]+([,.!?])", r"\1", text)  # "Hi , I'm" without a name
    return re.sub(r"[ \t]{2,}", " ", text).strip()
