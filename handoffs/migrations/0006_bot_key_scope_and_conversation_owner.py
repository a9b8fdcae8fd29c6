"""Bot keys get a scope and a namespace allowlist; a conversation is owned by its bot.

The data question, decided: every existing key keeps exactly the reach it had
(``scope = write``, ``namespaces = ""`` meaning every namespace), so the seed flow and
the bots already deployed keep working; narrowing a key is an admin decision (Django
admin, or ``create_bot_key NAME --rotate --scope read --namespaces 'user-*'``), never
a migration's guess. Conversations started before ownership mattered and left without
a bot get the bot that created their first hop, the rule new conversations follow.
"""

import django.db.models.deletion
import handoffs.models
from django.db import migrations, models


def own_orphan_conversations(apps, schema_editor):
    Conversation = apps.get_model("handoffs", "Conversation")
    Handoff = apps.get_model("handoffs", "Handoff")
    for conversation in Conversation.objects.filter(bot=None).iterator():
        first = (
            Handoff.objects.filter(conversation=conversation)
            .exclude(created_by_bot=None)
            .order_by("created_at", "pk")
            .first()
        )
        if first is not None:
            Conversation.objects.filter(pk=conversation.pk).update(bot=first.created_by_bot_id)


class Migration(migrations.Migration):

    dependencies = [
        ('handoffs', '0005_report_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='bot',
            name='namespaces',
            field=models.CharField(blank=True, default='', help_text='Customer namespaces (agent_id) this key may touch: glob patterns separated by commas, e.g. user-*, acme-?. Empty means every namespace.', max_length=2000, validators=[handoffs.models.validate_namespaces]),
        ),
        migrations.AddField(
            model_name='bot',
            name='scope',
            field=models.CharField(choices=[('read', 'Read (recall, search, get, list)'), ('write', 'Write (also store, forget, start and end sessions, hand off)'), ('admin', 'Admin (everything a key can do)')], default='write', help_text='read ⊂ write ⊂ admin. A read key recalls and searches but never stores, forgets, ends sessions or hands off.', max_length=8),
        ),
        migrations.AlterField(
            model_name='conversation',
            name='bot',
            field=models.ForeignKey(blank=True, help_text='The bot that owns it (the one that started it): only this bot gets its customer link, its handoffs by id and its conversation API. Change it here to move the conversation to another bot.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='conversations', to='handoffs.bot'),
        ),
        migrations.RunPython(own_orphan_conversations, migrations.RunPython.noop),
    ]
