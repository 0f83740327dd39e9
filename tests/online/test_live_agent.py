"""The live loop end to end: the real server under gunicorn (embedded mode: its worker process also judges the
async events and delivers the webhooks) on the test database, agents applied as `vigilo_agents apply` applies
them, and the SDK (client/vigilo_live.py) in the real example agent process and in this one.

Nothing of Vigilo is stood in for: the only thing between an agent and the server is, in one test, a loopback
proxy that loses answers, as a network does.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command

from api.services import token_create
from online.models import AgentAudit, CorrectionSignal, EvalEvent, MonitoredAgent, WebhookDelivery
from tests.support.live_agent import (
    AGENT,
    AGENTS_YAML,
    AgentRun,
    LossyProxy,
    agent_env,
    agent_run,
    vigilo_live,
    wait_for,
    web_start,
)
from tests.support.online import agent_make, event, leaking, off_topic, unreferenced

pytestmark = pytest.mark.django_db(transaction=True)
RESUME_REASON = "false positive: 4111 1111 1111 1111 is the test card"


@pytest.fixture
def web(published, tmp_path):
    """gunicorn on the test database; it depends on `published`, so it is stopped before the database is flushed."""
    server = web_start(tmp_path)
    try:
        yield server
    finally:
        server.proc.stop()


@pytest.fixture
def support_bot(web, tmp_path):
    """examples/live-agent/agents.yaml applied with the command a deployment runs; the agent's token."""
    secrets = tmp_path / "secrets.json"
    call_command("vigilo_agents", "apply", str(AGENTS_YAML), "--secrets-out", str(secrets))
    return json.loads(secrets.read_text())["support-bot"]["token"]


@pytest.fixture
def operator(transactional_db):
    """An operator's token (scope `operate`), made as `vigilo_token create ops --scopes operate` makes it."""
    _, secret = token_create(name="ops", scopes=["operate"])
    return secret


def test_the_example_agent_is_corrected_halted_refused_and_resumed(web, support_bot, operator, tmp_path):
    # 1. The script: a first answer cites no policy (nudge), a first lookup uses the web (redirect); the agent
    #    learns from both, so the second answer and lookup pass; the leak halts it and the last answer is never
    #    sent. The long-poll of every correction runs too: a correction comes by the answer and by the poll, and
    #    is handled once.
    first = agent_run(
        web.url, support_bot, "--script", "answer,tool,answer,tool,leak,answer", "--poll-all", "--poll-wait", "2"
    )
    context = first.describe() + web.log()

    assert first.code == 0, context
    emits = first.lines("EMIT")
    assert [(step, status, severity) for step, _, status, severity in emits] == [
        ("answer", "evaluated", "nudge"),
        ("tool", "evaluated", "redirect"),
        ("answer", "evaluated", "-"),
        ("tool", "evaluated", "-"),
        ("leak", "evaluated", "halt"),
    ], context
    corrections = first.lines("CORRECTION")
    assert [(severity, binding) for severity, _, binding in corrections] == [
        ("nudge", "policy-reference"),
        ("redirect", "on-topic-tools"),
    ], context
    rows = {str(c.delivery_id): c for c in CorrectionSignal.objects.select_related("event")}
    assert len(rows) == 3
    for (severity, delivery_id, _), (_, message_id, _, _) in ((corrections[0], emits[0]), (corrections[1], emits[1])):
        assert (rows[delivery_id].severity, rows[delivery_id].event.message_id) == (severity, message_id)
    halt = CorrectionSignal.objects.select_related("event").get(severity="halt")
    assert halt.event.message_id == emits[4][1]
    assert first.lines("STOPPED") == [["halt", str(halt.delivery_id), halt.reason]], context  # on_stop ran once
    assert first.lines("DONE") == [["5"]]
    assert all(c.acked_at is not None for c in rows.values()), "every correction, the halt included, was acked"
    assert MonitoredAgent.objects.get(name="support-bot").state == "halted"
    assert EvalEvent.objects.filter(agent__name="support-bot").count() == 5

    # 2. Started again while halted: its first event is refused (409) with the halt's id, the SDK stops.
    refused = agent_run(web.url, support_bot, "--script", "answer")

    assert refused.code == 0, refused.describe()
    assert refused.lines("HALTED") == [[str(halt.delivery_id), halt.reason]], refused.describe()
    assert refused.lines("STOPPED") == [["refused", str(halt.delivery_id), halt.reason]]
    assert (refused.lines("EMIT"), refused.lines("DONE")) == ([], [["0"]])
    assert EvalEvent.objects.filter(agent__name="support-bot").count() == 5  # nothing of it was stored

    # 3. Started with --wait-resume: refused, it waits; the agent's own token cannot resume it, an operator can.
    out = tmp_path / "resumed.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, str(AGENT), "--script", "answer,tool", "--wait-resume", "90"],
            env=agent_env(web.url, support_bot),
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_for(
            lambda: "WAITING" in out.read_text() or proc.poll() is not None,
            timeout_s=60,
            what="the agent to wait for a resume",
            logs=out.read_text,
        )
        assert "WAITING" in out.read_text(), out.read_text() + web.log()
        status, body = web.call("POST", "/api/v1/online/agents/support-bot/resume", support_bot, {"reason": "me"})
        assert (status, body["error"]["code"]) == (403, "permission_denied"), body
        assert not AgentAudit.objects.filter(action="resume").exists()

        status, body = web.call("POST", "/api/v1/online/agents/support-bot/resume", operator, {"reason": RESUME_REASON})
        assert status == 200, body
        assert (body["state"], body["audit"]["actor"], body["audit"]["reason"]) == (
            "active",
            "token:ops",
            RESUME_REASON,
        )
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the resumed agent did not finish\n{out.read_text()}\n{web.log()}", pytrace=False)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    resumed = AgentRun(code=proc.returncode, stdout=out.read_text(), stderr="")

    assert resumed.code == 0, resumed.describe() + web.log()
    words = [line.split(" ")[0] for line in resumed.stdout.splitlines() if line.split(" ")[0].isupper()]
    assert words[:4] == ["STOPPED", "HALTED", "WAITING", "RESUMED"], resumed.describe()
    # a fresh process has learnt nothing: nudged and redirected again, and told so
    assert [(step, status, severity) for step, _, status, severity in resumed.lines("EMIT")] == [
        ("answer", "evaluated", "nudge"),
        ("tool", "evaluated", "redirect"),
    ], resumed.describe()
    assert [c[0] for c in resumed.lines("CORRECTION")] == ["nudge", "redirect"]
    assert resumed.lines("STOPPED")[-1] == ["stop", "-", "closed"]
    assert MonitoredAgent.objects.get(name="support-bot").state == "active"

    audit = list(
        AgentAudit.objects.filter(agent__name="support-bot", action__in=["halt", "resume"])
        .order_by("id")
        .values_list("action", "actor", "reason", "correction__delivery_id")
    )
    assert audit == [
        ("halt", "supervisor", halt.reason, halt.delivery_id),
        ("resume", "token:ops", RESUME_REASON, None),
    ]


def emit(agent, body: dict):
    return agent.emit_eval(body["event_type"], body["payload"], message_id=body["message_id"])


def test_the_sdk_batches_retries_dedupes_webhooks_and_polls_stops_at_a_halt_and_resumes(web, operator, tmp_path):
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # bound first: the agent names it
    row, token = agent_make(
        "hook-bot",
        delivery="webhook",
        webhook_url=f"http://127.0.0.1:{receiver.server_address[1]}/vigilo",
        sync_deadline_ms=5000,
    )
    secret = MonitoredAgent.objects.get(pk=row.pk).webhook_secret
    proxy = LossyProxy(web.url)
    agent = vigilo_live.LiveAgent(proxy.url, token, mode="async", flush_s=0.05, poll_wait_s=2, timeout_s=15)
    receiver.RequestHandlerClass = vigilo_live.webhook_handler(agent, secret)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    seen, stops = [], []
    agent.on_correction(seen.append)
    agent.on_stop(stops.append)

    def logs() -> str:
        return f"seen {[(c.severity, c.delivery_id) for c in seen]}, stops {stops}\n{web.log()}"

    try:
        # Every correction comes by webhook and by long-poll (acked or not: unacked=False), each is handled once.
        agent.start_polling(unacked=False)
        proxy.lose(1, b"POST /api/v1/online/events")  # the first batch is stored, its 202 lost: sent again
        bodies = [unreferenced(), off_topic(), event()]
        answers = [emit(agent, b) for b in bodies]

        assert [a.status for a in answers] == ["queued"] * 3
        assert agent.flush(60), logs()
        assert proxy.lost == 1
        stored = EvalEvent.objects.filter(agent=row)
        assert sorted(stored.values_list("message_id", flat=True)) == sorted(b["message_id"] for b in bodies)
        assert set(stored.values_list("path", flat=True)) == {"http"}

        def settled() -> bool:
            rows = CorrectionSignal.objects.filter(agent=row)
            return (
                rows.count() == 2
                and WebhookDelivery.objects.filter(correction__agent=row, status="delivered").count() == 2
                and agent.cursor >= max(rows.values_list("id", flat=True))
                and not rows.filter(acked_at__isnull=True).exists()
            )

        wait_for(settled, timeout_s=90, what="both corrections delivered by webhook, polled and acked", logs=logs)
        rows = {str(c.delivery_id): c for c in CorrectionSignal.objects.filter(agent=row).select_related("event")}
        assert sorted((c.severity, c.event["message_id"]) for c in seen) == sorted(
            (rows[c.delivery_id].severity, rows[c.delivery_id].event.message_id) for c in seen
        )
        assert sorted(c.severity for c in seen) == ["nudge", "redirect"], logs()
        assert len({c.delivery_id for c in seen}) == 2

        # A leak, judged by the server's worker: the halt arrives by webhook and poll, the agent stops once.
        emit(agent, leaking())
        wait_for(lambda: stops, timeout_s=90, what="the halt to stop the agent", logs=logs)
        halt = CorrectionSignal.objects.get(agent=row, severity="halt")
        assert [(s.source, s.halt_id, s.reason) for s in stops] == [("halt", str(halt.delivery_id), halt.reason)]
        assert agent.running is False
        posted = [r for r in proxy.requests if r.startswith("POST /api/v1/online/events")]
        with pytest.raises(vigilo_live.AgentHalted) as info:
            emit(agent, event())
        assert (info.value.halt_id, info.value.reason) == (str(halt.delivery_id), halt.reason)
        assert agent.flush(5)
        assert [r for r in proxy.requests if r.startswith("POST /api/v1/online/events")] == posted  # nothing sent
        assert agent.wait_resumed(0.5, every_s=0.1) is False  # still halted: only an operator resumes

        # A sync agent of the same token is refused by the server (409) with the same halt.
        sync_agent = vigilo_live.LiveAgent(web.url, token)
        with pytest.raises(vigilo_live.AgentHalted) as info:
            asyncio.run(sync_agent.aemit_eval("llm_output", {"text": "Refunds take 5 days, see REF-12."}))
        assert (info.value.status, info.value.halt_id, sync_agent.running) == (409, str(halt.delivery_id), False)

        status, body = web.call("POST", "/api/v1/online/agents/hook-bot/resume", operator, {"reason": RESUME_REASON})
        assert status == 200, body
        assert agent.wait_resumed(30, every_s=0.1) is True
        assert agent.running is True
        assert sync_agent.wait_resumed(30, every_s=0.1) is True
        answer = asyncio.run(sync_agent.aemit_eval("llm_output", {"text": "Refunds take 5 days, see REF-12."}))
        assert (answer.status, answer.correction) == ("evaluated", None)

        # Running again: the poller goes on after the halt's cursor, the next nudge arrives once.
        later = unreferenced()
        emit(agent, later)
        wait_for(
            lambda: any(c.event.get("message_id") == later["message_id"] for c in seen),
            timeout_s=90,
            what="the nudge after the resume",
            logs=logs,
        )
    finally:
        agent.close()
        receiver.shutdown()
        receiver.server_close()
        proxy.close()

    assert [s.source for s in stops] == ["halt", "stop"]  # the close after the resume is a stop of its own
    assert sorted(c.severity for c in seen) == ["nudge", "nudge", "redirect"]  # each delivery once
    assert AgentAudit.objects.filter(agent=row, action="resume", actor="token:ops", reason=RESUME_REASON).count() == 1
    assert EvalEvent.objects.filter(agent=row).count() == 6  # 3, the leak, the sync one, the later one
