"""Django-side steps of the live-evaluation benchmark (bench/live.py), run as subprocesses with the cluster's env.

    python bench/live_steps.py lower --events N        the lower bound: the bench profile's 3 bindings evaluated
                                                        in this process, a fresh instance per binding and event
    python bench/live_steps.py evaluated --agent A --n N --timeout S
                                                        wait until N events of agent A are evaluated; timings
    python bench/live_steps.py counts --agent A         events by status, corrections by outcome

Every command prints one JSON object on its last stdout line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigilo_project.settings")

import django  # noqa: E402

django.setup()


def pcts(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    if not v:
        return {}
    return {
        "mean": statistics.fmean(v),
        "p50": v[len(v) // 2],
        "p99": v[min(len(v) - 1, int(len(v) * 0.99))],
        "max": v[-1],
        "n": len(v),
    }


def payload(i: int) -> dict:
    """The bench's event payloads: every tenth one lacks its policy reference (a nudge)."""
    ref = "" if i % 10 == 9 else " See policy REF-12."
    return {"text": f"Order {i}: refunds take 5 business days.{ref}", "model": "bench-model"}


def cmd_lower(a: argparse.Namespace) -> dict:
    """What evaluating an event costs with no HTTP, no database, no queue: the engine's own calls."""
    from django.utils import timezone

    from online.engine import event_judge, profile_loaded
    from online.models import EvalEvent, MonitoredAgent

    agent = MonitoredAgent.objects.select_related("profile").get(name=a.agent)
    profile = profile_loaded(agent.profile)
    times = []
    failures = 0
    for i in range(a.events + 20):
        event = EvalEvent(
            message_id=f"lower-{i}", event_type="llm_output", payload=payload(i), timestamp=timezone.now()
        )
        t0 = time.perf_counter()
        judgment = event_judge(event=event, agent_name=agent.name, profile=profile)
        elapsed = (time.perf_counter() - t0) * 1000
        if i >= 20:  # after the warm-up
            times.append(elapsed)
            failures += bool(judgment.failures)
    total_s = sum(times) / 1000
    return {
        "events": len(times),
        "bindings": len(profile.judging("llm_output")),
        "failing": failures,
        "event_ms": pcts(times),
        "events_per_s_one_process": len(times) / total_s,
    }


def cmd_evaluated(a: argparse.Namespace) -> dict:
    """Wait until `n` of the agent's events are evaluated; the first and last evaluated_at."""
    from django.db.models import Max, Min

    from online.models import EvalEvent

    deadline = time.monotonic() + a.timeout
    while True:
        done = EvalEvent.objects.filter(agent__name=a.agent, status="evaluated")
        count = done.count()
        if count >= a.n or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    span = done.aggregate(first_received=Min("received_at"), last_evaluated=Max("evaluated_at"))
    return {
        "evaluated": count,
        "complete": count >= a.n,
        "first_received": span["first_received"].timestamp() if span["first_received"] else None,
        "last_evaluated": span["last_evaluated"].timestamp() if span["last_evaluated"] else None,
    }


def cmd_counts(a: argparse.Namespace) -> dict:
    from django.db.models import Count

    from online.models import CorrectionSignal, EvalEvent, OnlineResult

    events = dict(
        EvalEvent.objects.filter(agent__name=a.agent)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    corrections = dict(
        CorrectionSignal.objects.filter(agent__name=a.agent)
        .values_list("dropped")
        .annotate(n=Count("id"))
        .values_list("dropped", "n")
    )
    return {
        "events": events,
        "results": OnlineResult.objects.filter(event__agent__name=a.agent).count(),
        "corrections_delivered": corrections.get(False, 0),
        "corrections_dropped": corrections.get(True, 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("lower")
    p.add_argument("--agent", required=True)
    p.add_argument("--events", type=int, default=2000)
    p = sub.add_parser("evaluated")
    p.add_argument("--agent", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--timeout", type=float, default=600)
    p = sub.add_parser("counts")
    p.add_argument("--agent", required=True)
    a = parser.parse_args()
    out = {"lower": cmd_lower, "evaluated": cmd_evaluated, "counts": cmd_counts}[a.cmd](a)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
