"""The CI client's verdict table, from verdicts as the API serves them: no server needed."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "client" / "vigilo_gate.py"
_spec = importlib.util.spec_from_file_location("vigilo_gate_under_test", CLIENT)
assert _spec is not None and _spec.loader is not None
vigilo_gate = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = vigilo_gate
_spec.loader.exec_module(vigilo_gate)

RUN = {"id": "0b7f", "name": "nightly", "state": "completed", "gate": "fail"}
NO_MODEL = {"calls": 0, "cached_calls": 0, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0, "cost_usd": 0.0}


def table(verdict: dict | None) -> str:
    out = io.StringIO()
    vigilo_gate.print_verdict(RUN, verdict, out)
    return out.getvalue()


def test_reasons_and_warnings_name_their_cases_not_execution_ids():
    verdict = {
        "gate": "fail",
        "reasons": [
            {
                "code": "executions_failed",
                "message": "2 of 40 executions failed",
                "count": 2,
                "examples": ["278", "281"],
                "cases": ["refund-17", "refund-22"],
            }
        ],
        "warnings": [
            {
                "code": "passed_with_failed_bindings",
                "message": "3 execution(s) passed although a binding failed (min_execution_score 0.5 lets them pass)",
                "count": 3,
                "examples": ["12", "13", "19"],
                "cases": ["billing-1", "billing-2", "billing-8"],
            }
        ],
        "model_usage": NO_MODEL,
    }

    text = table(verdict)

    assert "  - [executions_failed] 2 of 40 executions failed (count 2; e.g. cases refund-17, refund-22)\n" in text
    assert (
        "\n  warnings:\n  - [passed_with_failed_bindings] 3 execution(s) passed although a binding failed "
        "(min_execution_score 0.5 lets them pass) (count 3; e.g. cases billing-1, billing-2, billing-8)\n"
    ) in text
    assert "278" not in text and "model usage" not in text


def test_a_reason_without_examples_prints_no_e_g():
    verdict = {
        "reasons": [{"code": "chunks_failed", "message": "1 chunk(s) failed", "count": 1, "examples": [], "cases": []}]
    }

    text = table(verdict)

    assert "  - [chunks_failed] 1 chunk(s) failed (count 1)\n" in text
    assert "e.g." not in text and "warnings" not in text


def test_a_verdict_from_an_older_server_shows_its_execution_ids():
    verdict = {"reasons": [{"code": "executions_failed", "message": "1 of 2 failed", "count": 1, "examples": ["7"]}]}

    assert "(count 1; e.g. executions 7)\n" in table(verdict)


def test_model_usage_prints_tokens_and_cost_when_a_model_was_called():
    verdict = {
        "model_usage": {
            "calls": 12,
            "cached_calls": 4,
            "input_tokens": 10240,
            "output_tokens": 960,
            "total_tokens": 11200,
            "cost_usd": 0.00042,
            "by_model": {},
        }
    }

    text = table(verdict)

    assert "\n  model usage: 12 call(s) (4 cached), 11,200 tokens (10,240 in, 960 out), cost $0.000420\n" in text


def test_no_verdict_yet_prints_the_run_only():
    assert table(None) == "\nRun 0b7f  nightly\n  state completed, gate FAIL\n\n"
