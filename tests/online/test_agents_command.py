"""`manage.py vigilo_agents apply agents.yaml`: agents and their tokens from YAML, re-runnable, every problem
named by its path, nothing half-applied."""

from __future__ import annotations

import json
import os
import stat
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from api.models import ApiToken
from api.services import token_authenticate
from online.models import AgentAudit, MonitoredAgent
from online.services import agent_resume
from tests.support.online import LIVE_EXAMPLE

pytestmark = pytest.mark.django_db

AGENTS = """
agents:
  - name: support-bot
    profile: {profile}
    sample_rate: 0.5
    event_types: [llm_output, tool_call]
    rate_limit: {{max_corrections_per_window: 5, window_seconds: 30}}
  - name: billing-bot
    profile: {profile}
    delivery: webhook
    webhook: {{url: "http://127.0.0.1:9/hook"}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    return path


def apply(path: Path, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("vigilo_agents", "apply", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_apply_creates_agents_with_their_own_tokens_and_is_re_runnable(published, tmp_path):
    path = write(tmp_path, AGENTS.format(profile=LIVE_EXAMPLE / "live-profile.yaml"))
    secrets_file = tmp_path / "secrets.json"
    out, err = apply(path, "--secrets-out", str(secrets_file))
    assert out == ""  # the secrets went to the file only
    assert "agent support-bot created" in err and "agent billing-bot created" in err
    assert stat.S_IMODE(os.stat(secrets_file).st_mode) == 0o600
    secrets = json.loads(secrets_file.read_text())
    assert set(secrets) == {"support-bot", "billing-bot"}
    assert set(secrets["billing-bot"]) == {"token", "webhook_secret"}
    token = token_authenticate(secret=secrets["support-bot"]["token"])
    assert token is not None and token.agent is not None
    assert (token.agent.name, token.scopes) == ("support-bot", ["emit"])
    bot = MonitoredAgent.objects.get(name="support-bot")
    assert (bot.sample_rate, bot.event_types, bot.max_corrections_per_window, bot.window_seconds) == (
        0.5,
        ["llm_output", "tool_call"],
        5,
        30,
    )
    assert bot.profile.name == "support-live"

    out, err = apply(path)  # again: nothing changes, no new secret
    assert out == ""
    assert "agent support-bot unchanged" in err
    assert ApiToken.objects.count() == 2
    assert AgentAudit.objects.filter(action="apply").count() == 2


def test_re_apply_updates_settings_but_never_the_state(published, tmp_path):
    profile = LIVE_EXAMPLE / "live-profile.yaml"
    path = write(tmp_path, AGENTS.format(profile=profile))
    apply(path)
    MonitoredAgent.objects.filter(name="support-bot").update(state="halted", halted_reason="by a test")
    path = write(tmp_path, AGENTS.format(profile=profile).replace("sample_rate: 0.5", "sample_rate: 0.25"))
    _, err = apply(path)
    assert "agent support-bot updated: sample_rate" in err
    bot = MonitoredAgent.objects.get(name="support-bot")
    assert (bot.sample_rate, bot.state) == (0.25, "halted")
    agent_resume(agent_name="support-bot", actor="test", reason="done")


def test_rotate_issues_a_new_token_and_revokes_the_old(published, tmp_path):
    path = write(tmp_path, AGENTS.format(profile=LIVE_EXAMPLE / "live-profile.yaml"))
    first = json.loads(apply(path)[0])
    second = json.loads(apply(path, "--rotate", "support-bot")[0])
    assert set(second) == {"support-bot"}
    assert token_authenticate(secret=first["support-bot"]["token"]) is None
    assert token_authenticate(secret=second["support-bot"]["token"]) is not None


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("agents: []", "agents"),
        ("agents:\n  - name: Bad Name\n    profile: {profile}", "agents[0].name"),
        ("agents:\n  - name: a\n    profile: {profile}\n    sample_rate: 2", "agents[0].sample_rate"),
        ("agents:\n  - name: a\n    profile: {profile}\n    colour: red", "agents[0].colour"),
        ("agents:\n  - name: a\n    profile: {profile}\n    delivery: webhook", "agents[0].webhook"),
        ("agents:\n  - name: a\n    profile: missing.yaml", "agents[0].profile"),
        ("agents:\n  - name: a\n    profile: {profile}\n  - name: a\n    profile: {profile}", "agents[1].name"),
        ("agents:\n  - name: a\n    profile: {profile}\n    guardrail: {{url: ftp://x}}", "agents[0].guardrail.url"),
        (
            "agents:\n  - name: a\n    profile: {profile}\n    guardrail: {{protocol: fiddler}}",
            "agents[0].guardrail.secret",
        ),
        ("agents:\n  - name: a\n    profile: {profile}\n    export: [splunk]", "agents[0].export[0]"),
        ("agents: [\n", "line"),
    ],
)
def test_a_bad_agents_file_exits_3_naming_the_path_and_applies_nothing(published, tmp_path, text, where):
    path = write(tmp_path, text.format(profile=LIVE_EXAMPLE / "live-profile.yaml"))
    with pytest.raises(CommandError) as info:
        apply(path)
    assert info.value.returncode == 3
    assert where in str(info.value)
    assert not MonitoredAgent.objects.exists()


def test_a_bad_online_profile_names_the_binding_field_and_applies_nothing(published, tmp_path):
    profile = tmp_path / "bad-profile.yaml"
    text = (LIVE_EXAMPLE / "live-profile.yaml").read_text()
    profile.write_text(text.replace("severity: halt", "severity: explode").replace("{event_type}", "{when}"))
    good = LIVE_EXAMPLE / "live-profile.yaml"
    path = write(
        tmp_path,
        f"agents:\n  - name: first\n    profile: {good}\n  - name: second\n    profile: {profile}\n",
    )
    with pytest.raises(CommandError) as info:
        apply(path)
    message = str(info.value)
    assert "bindings[0].online.severity: must be one of nudge, redirect, halt" in message
    assert "bindings[0].online.reason: unknown field {when}" in message
    assert not MonitoredAgent.objects.exists()  # the first agent was not applied either
