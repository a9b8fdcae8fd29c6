from django.conf import settings
from django.db import migrations


def create_default_team(apps, schema_editor):
    Team = apps.get_model("handoffs", "Team")
    Team.objects.get_or_create(
        slug=settings.HANDOFF_DEFAULT_TEAM,
        defaults={"name": "General queue", "is_default": True},
    )


class Migration(migrations.Migration):
    dependencies = [("handoffs", "0001_initial")]

    operations = [migrations.RunPython(create_default_team, migrations.RunPython.noop)]
