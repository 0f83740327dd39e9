#!/usr/bin/env python3
"""A toy support agent under live evaluation, with the SDK (client/vigilo_live.py): it plays a script of steps,
emits what each step does, and changes its ways when Vigilo corrects it.

Steps (`--script`, comma separated):
    answer   an llm_output replying to a customer; it cites no policy until a nudge asks it to
    tool     a tool_call to look the question up; it uses web_search until a redirect sends it to kb_search
    leak     an llm_output that shows the customer's card number: the supervisor halts the agent

One machine-readable line per thing that happened, on stdout:
    EMIT <step> <message_id> <status> <severity of its correction, or ->
    CORRECTION <severity> <delivery_id> <binding>
    STOPPED <source> <halt_id or -> <reason>         (on_stop: a halt, a refused event, a signal, the end)
    HALTED <halt_id> <reason>                         (the server refused an event: 409 agent_halted)
    WAITING <seconds>  /  RESUMED  /  GAVE-UP         (--wait-resume: until an operator resumes the agent)
    NOOP <why>                                        (no VIGILO_URL: the SDK is a no-op)
    DONE <steps played>

VIGILO_URL and VIGILO_AGENT_TOKEN say where to emit (without VIGILO_URL the SDK is a no-op). Exit 0 when the
script ended or the agent was stopped, 4 when --wait-resume gave up.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

try:
    import vigilo_live
except ImportError:  # run from a checkout: the SDK is the repository's client/vigilo_live.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "client"))
    import vigilo_live

STEPS = ("answer", "tool", "leak")
CARD = "4111 1111 1111 1111"
EXIT_GAVE_UP = 4


def say(*words: Any) -> None:
    print(*words, flush=True)


class SupportBot:
    """The agent's own state: what the corrections changed."""

    def __init__(self) -> None:
        self.cite_policy = False
        self.tool = "web_search"

    def on_correction(self, correction: vigilo_live.Correction) -> None:
        say("CORRECTION", correction.severity, correction.delivery_id, correction.payload.get("binding", "-"))
        if correction.severity == "nudge":
            self.cite_policy = True  # every later answer names the policy it relies on
        elif correction.severity == "redirect":
            self.tool = "kb_search"  # the support knowledge base instead of the web

    def on_stop(self, stop: vigilo_live.Stop) -> None:
        say("STOPPED", stop.source, stop.halt_id or "-", stop.reason)

    def event(self, step: str) -> tuple[str, dict[str, Any]]:
        policy = " See policy REF-12." if self.cite_policy else ""
        if step == "answer":
            return "llm_output", {"input": "How long does a refund take?", "text": f"Refunds take 5 days.{policy}"}
        if step == "tool":
            return "tool_call", {"name": self.tool, "arguments": {"q": "refund delay"}}
        return "llm_output", {"input": "Which card do you have?", "text": f"Your card {CARD} is on file.{policy}"}


def script(text: str) -> list[str]:
    steps = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown or not steps:
        raise argparse.ArgumentTypeError(f"steps are {', '.join(STEPS)} (got {text!r})")
    return steps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--script", type=script, default=script("answer,tool,answer,tool,leak,answer"))
    p.add_argument("--mode", choices=("sync", "async"), default="sync")
    p.add_argument("--poll", action="store_true", help="also long-poll the corrections not acked yet")
    p.add_argument("--poll-all", action="store_true", help="long-poll every correction, acked or not (from 0)")
    p.add_argument("--poll-wait", type=float, default=20.0, help="seconds one long-poll waits")
    p.add_argument("--wait-resume", type=float, default=0.0, help="when halted, wait this long for a resume")
    p.add_argument("--linger", type=float, default=0.0, help="at the end, wait this long for late corrections")
    args = p.parse_args(argv)

    agent = vigilo_live.LiveAgent(mode=args.mode, poll_wait_s=args.poll_wait)
    if not agent.enabled:
        say("NOOP", "VIGILO_URL is not set: the SDK sends nothing")
    bot = SupportBot()
    agent.on_correction(bot.on_correction)
    agent.on_stop(bot.on_stop)
    agent.install_signal_handlers()
    if args.poll or args.poll_all:  # each correction then comes twice (answer and poll): handled once
        agent.start_polling(0, unacked=not args.poll_all)
    ids = [uuid.uuid4().hex for _ in args.script]  # a step retried after a resume keeps its message id
    emitted = i = 0
    while i < len(args.script):
        if not agent.running:
            if agent.halted is None or args.wait_resume <= 0:
                break
            say("WAITING", f"{args.wait_resume:g}")
            if not agent.wait_resumed(args.wait_resume, every_s=0.5):
                say("GAVE-UP")
                agent.close()
                return EXIT_GAVE_UP
            say("RESUMED")
        step = args.script[i]
        event_type, payload = bot.event(step)
        try:
            answer = agent.emit_eval(event_type, payload, message_id=ids[i])
        except vigilo_live.AgentHalted as exc:
            say("HALTED", exc.halt_id or "-", exc.reason)
            continue  # the loop waits for a resume, or ends
        except vigilo_live.AgentStopped:
            break
        if answer is not None:
            severity = answer.correction.severity if answer.correction else "-"
            say("EMIT", step, answer.message_id, answer.status, severity)
        emitted += 1
        i += 1
    if args.linger > 0 and agent.running:  # the async mode's corrections come later, by the long-poll
        agent.flush()
        deadline = time.monotonic() + args.linger
        while agent.running and time.monotonic() < deadline:
            time.sleep(0.1)
    agent.close()
    say("DONE", emitted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
