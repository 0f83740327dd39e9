"""Reports of a finished run: the verdict table for terminals, a JSON report and JUnit XML for CI."""

from __future__ import annotations

import json
from typing import Any, Protocol
from xml.etree import ElementTree as ET

from runs.models import EvaluatorResult, Execution, Run
from vigilo_project import exitcodes


class TextOut(Protocol):
    """Where a report is written: a text stream, or a management command's stdout (Django's OutputWrapper)."""

    def write(self, text: str, /) -> object: ...


def exit_code(run: Run) -> int:
    if run.state in (Run.State.FAILED, Run.State.CANCELLED):
        return exitcodes.OPERATIONAL
    if run.state != Run.State.COMPLETED:
        return exitcodes.TIMEOUT
    return exitcodes.OK if run.gate == Run.Gate.PASS else exitcodes.FAILED


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _examples(finding: dict[str, Any]) -> str:
    """The "; e.g. cases a, b" of a reason or a warning, or nothing when it has no example. A verdict stored
    before reasons named their cases shows its execution ids instead."""
    cases = finding.get("cases")
    label, shown = ("cases", cases) if cases is not None else ("executions", finding.get("examples") or [])
    names = ", ".join(str(name) for name in shown[:5])
    return f"; e.g. {label} {names}" if names else ""


def _usd(cost: float) -> str:
    return f"${cost:.4f}" if cost >= 0.01 or cost == 0 else f"${cost:.6f}"


def _usage_line(usage: dict[str, Any] | None) -> str:
    """The model calls' totals (evaluators.model_broker.usage_summary), "" for a run that called no model."""
    if not usage or not usage.get("calls"):
        return ""
    return (
        f"model usage: {usage['calls']} call(s) ({usage.get('cached_calls', 0)} cached), "
        f"{usage.get('total_tokens', 0):,} tokens ({usage.get('input_tokens', 0):,} in, "
        f"{usage.get('output_tokens', 0):,} out), cost {_usd(float(usage.get('cost_usd') or 0.0))}"
    )


def verdict_table(*, run: Run, out: TextOut) -> None:
    verdict = run.verdict or {}
    counts = verdict.get("counts", {})
    gate = (verdict.get("gate") or run.gate).upper()
    out.write(f"\nRun {run.id}  {run.name}\n")
    out.write(f"  state {run.state}, gate {gate}\n")
    c = {k: counts.get(k, 0) for k in ("expected", "passed", "failed", "error", "missing")}
    out.write(
        f"  executions: {c['expected']} expected, {c['passed']} passed, {c['failed']} failed, "
        f"{c['error']} error, {c['missing']} missing\n"
    )
    dims = verdict.get("dimensions", {})
    if dims:
        out.write("\n  dimension            mean   pass rate  error rate\n")
        for name, d in dims.items():
            mean, rate, errors = _fmt(d.get("mean")), _fmt(d.get("pass_rate")), _fmt(d.get("error_rate"))
            out.write(f"  {name:<18} {mean:>6} {rate:>11} {errors:>11}\n")
    for gate_row in verdict.get("scorecard", []):
        mark = "ok  " if gate_row["holds"] else "FAIL"
        out.write(f"  scorecard {mark} {gate_row['gate']}: observed {json.dumps(gate_row['observed'])}\n")
    reasons = verdict.get("reasons", [])
    if reasons:
        out.write("\n  why the gate failed:\n")
        for r in reasons:
            out.write(f"  - [{r['code']}] {r['message']} (count {r['count']}{_examples(r)})\n")
    warnings = verdict.get("warnings", [])
    if warnings:
        out.write("\n  warnings:\n")
        for w in warnings:
            out.write(f"  - [{w['code']}] {w['message']} (count {w['count']}{_examples(w)})\n")
    isolation = verdict.get("isolation") or {}
    if isolation.get("instance_reuse"):
        out.write(
            f"\n  instance reuse: {isolation.get('reused', 0)} reused, {isolation.get('rechecked', 0)} re-checked in "
            f"a fresh instance, {isolation.get('fresh', 0)} fresh\n"
        )
    if isolation.get("mismatch"):
        out.write(
            f"  WARNING: {isolation['mismatch']} re-checked result(s) differed between a reused and a fresh instance; "
            "the fresh results were kept. An evaluator declared pure is not: publish it without --pure or turn "
            "options.instance_reuse off.\n"
        )
    agent = verdict.get("agent")
    if agent:
        out.write(
            f"\n  agent ({agent['protocol']} at {agent['url']}): {agent['outputs']} output(s) produced, "
            f"{agent['failed']} case(s) without output (agent_error)\n"
        )
    usage = _usage_line(verdict.get("model_usage"))
    if usage:
        out.write(f"\n  {usage}\n")
    worst = [w for w in verdict.get("worst", []) if w.get("status") != "passed"]
    if worst:
        out.write("\n  worst executions:\n")
        for w in worst[:10]:
            why = "; ".join(w.get("reasons", []))[:120]
            out.write(f"  - {w['case_id']:<24} {w['status']:<7} score {_fmt(w.get('aggregate_score'))}  {why}\n")
    out.write("\n")


def _results_by_execution(run: Run) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    rows = EvaluatorResult.objects.filter(run=run).select_related("execution").order_by("binding_id")
    for r in rows.iterator(chunk_size=2000):
        if r.attempt != r.execution.attempt:
            continue  # a stale attempt's result
        out.setdefault(r.execution_id, []).append(
            {
                "binding": r.binding_id,
                "outcome": r.outcome,
                "kind": r.kind or None,
                "measurement": r.measurement,
                "abstention": r.abstention,
                "score": r.score,
                "judgment": r.judgment or None,
                "blocking": r.blocking,
                "error_code": r.error_code or None,
                "error_message": r.error_message or None,
                "findings": r.findings,
                "explanation": r.explanation or None,
                "logs": r.logs,
                "logs_truncated": r.logs_truncated,
                "duration_ms": round(r.duration_ms, 3),
                "fuel_used": r.fuel_used,
                "isolation": r.isolation,
            }
        )
    return out


def json_report(*, run: Run) -> dict[str, Any]:
    results = _results_by_execution(run)
    executions = []
    for e in (
        Execution.objects.filter(run=run).select_related("aggregate").order_by("ordinal").iterator(chunk_size=2000)
    ):
        agg = getattr(e, "aggregate", None)
        executions.append(
            {
                "execution_id": str(e.id),
                "case_id": e.case_id,
                "tags": e.tags,
                "status": agg.status if agg else None,
                "aggregate_score": agg.aggregate_score if agg else None,
                "dimension_scores": agg.dimension_scores if agg else {},
                "reasons": agg.reasons if agg else [],
                "results": results.get(e.id, []),
                # The run target's call, and the output it produced (a dataset's own outputs are in the dataset).
                "agent_call": e.agent_call,
                **({"output": e.snapshot.get("output")} if e.agent_call else {}),
            }
        )
    return {
        "run": {
            "id": str(run.id),
            "name": run.name,
            "state": run.state,
            "gate": run.gate,
            "dataset": str(run.dataset_version),
            "profile": str(run.profile_version),
            "pins": run.pins,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "failure_reason": run.failure_reason or None,
        },
        "verdict": run.verdict,
        "executions": executions,
    }


def junit_xml(*, run: Run) -> bytes:
    report = json_report(run=run)
    counts = (run.verdict or {}).get("counts", {})
    suite = ET.Element(
        "testsuite",
        name=f"vigilo {run.name or run.id}",
        tests=str(len(report["executions"])),
        failures=str(counts.get("failed", 0)),
        errors=str(counts.get("error", 0)),
    )
    for e in report["executions"]:
        case = ET.SubElement(
            suite, "testcase", classname=f"vigilo.{run.profile_version.profile.name}", name=e["case_id"]
        )
        detail = "\n".join(
            f"{r['binding']}: {r['outcome']} score={r['score']} judgment={r['judgment']} "
            f"{r['error_code'] or ''} {r['error_message'] or ''}".strip()
            + "".join(f"\n  [{f['severity']}] {f['message']}" for f in r["findings"])
            for r in e["results"]
        )
        if e["status"] == "failed":
            ET.SubElement(case, "failure", message="; ".join(e["reasons"])[:500] or "failed").text = detail
        elif e["status"] in ("error", None):
            ET.SubElement(case, "error", message="; ".join(e["reasons"])[:500] or "not evaluated").text = detail
    xml: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)  # typeshed: Any for a named encoding
    return xml


def compare_table(*, compare: dict[str, Any], out: TextOut) -> None:
    """A run compared with a baseline (`runs.selectors.run_compare`), in the lines the CI client prints."""
    out.write(
        f"  compared with baseline {compare['baseline']}: {compare['changed']} of {compare['cases_compared']} cases "
        "changed status\n"
    )
    for transition, count in compare.get("transitions", {}).items():
        out.write(f"    {transition}: {count}\n")
    for name, d in compare.get("dimensions", {}).items():
        delta = d.get("delta")
        out.write(
            f"    {name:<18} mean {_fmt(d.get('mean'))} (baseline {_fmt(d.get('baseline_mean'))}, "
            f"delta {'-' if delta is None else f'{delta:+.3f}'})\n"
        )
    for change in compare.get("changes", [])[:10]:
        out.write(f"    {change['case_id']}: {change['baseline_status']} -> {change['status']}\n")
