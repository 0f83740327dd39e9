from django.db import migrations, models


def backfill(apps, schema_editor):
    """Runs made before bindings had `when` evaluated every binding for every case."""
    Run = apps.get_model("runs", "Run")
    for run in Run.objects.only("id", "expected_executions", "pins").iterator():
        Run.objects.filter(pk=run.pk).update(expected_results=run.expected_executions * len(run.pins))


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0003_execution_agent_call"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="expected_results",
            field=models.PositiveIntegerField(
                default=0, help_text="one per execution and binding that applies to its case (bindings' `when`)"
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
