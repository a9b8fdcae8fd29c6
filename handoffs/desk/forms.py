"""The endings form of a conversation: one form for every way a hop ends."""

from __future__ import annotations

from django import forms

from ..models import Agent, Handoff, Sentiment, Team, Urgency

ACTIONS = [
    ("resolve", "Resolve"),
    ("transfer", "Transfer to a team or colleague"),
    ("release", "Release to my team's queue"),
    ("handback", "Hand back to the bot"),
]
SUBMIT_LABELS = {
    "resolve": "Resolve…",
    "transfer": "Transfer",
    "release": "Release to the queue",
    "handback": "Hand back",
}
RATINGS = [
    ("accurate", "Summary accurate"),
    ("missing_info", "Missing information"),
    ("unnecessary", "Unnecessary escalation"),
]
NOTE_REQUIRED = {"transfer", "handback"}


class EndingForm(forms.Form):
    """Resolve, transfer, release or hand back, with a note, a rating of the handoff
    received, and (for the next hop) the customer's mood and urgency if they changed.

    Bound to the POST on an error, so every choice comes back as the agent left it.
    """

    action = forms.ChoiceField(choices=ACTIONS, initial="resolve")
    to = forms.ChoiceField(required=False, label="Transfer to")
    note = forms.CharField(required=False, max_length=5000, widget=forms.Textarea)
    rating = forms.ChoiceField(choices=RATINGS, required=False, widget=forms.RadioSelect)
    sentiment = forms.ChoiceField(required=False)
    urgency = forms.ChoiceField(required=False)
    confirm = forms.BooleanField(required=False)

    def __init__(self, *args, handoff: Handoff, agent: Agent, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.handoff = handoff
        self.needs_confirmation = False
        teams = [(t.slug, t.name) for t in Team.objects.exclude(pk=handoff.team_id)]
        people = [
            (f"human:{a.user.get_username()}", f"{a.display_name} (colleague)")
            for a in Agent.objects.exclude(pk=agent.pk).select_related("user")
        ]
        self.fields["to"].choices = [("", "Choose a team or colleague…"), *teams, *people]
        self.fields["sentiment"].choices = [
            ("", f"Keep: {handoff.get_sentiment_display()}"),
            *Sentiment.choices,
        ]
        self.fields["urgency"].choices = [
            ("", f"Keep: {handoff.get_urgency_display()}"),
            *Urgency.choices,
        ]
        if handoff.team is None:
            self.fields["action"].choices = [a for a in ACTIONS if a[0] != "release"]

    @property
    def current_action(self) -> str:
        value = self.data.get("action") if self.is_bound else None
        return value if value in SUBMIT_LABELS else "resolve"

    @property
    def submit_label(self) -> str:
        return SUBMIT_LABELS[self.current_action]

    def clean(self):
        data = super().clean()
        action = data.get("action")
        note = (data.get("note") or "").strip()
        data["note"] = note
        if action == "transfer" and not data.get("to"):
            self.add_error("to", "Choose who to transfer to.")
        if action in NOTE_REQUIRED and not note:
            self.add_error(
                "note", "A note is required: it becomes the next agent's handoff summary."
            )
        return data
