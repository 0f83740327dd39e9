#!/usr/bin/env python3
"""vigilo-gate: evaluate an agent release in CI against a Vigilo server and exit with the gate's code.

Standard library only, so it runs anywhere Python 3.9+ does:

    python vigilo_gate.py --url https://vigilo.example.com --token "$VIGILO_TOKEN" \
        --dataset cases.jsonl --profile profile.yaml --wait --junit report.xml

Exit codes: 0 gate passed; 1 gate failed; 2 run failed or was cancelled; 3 usage or connection error;
4 timed out waiting. Without --wait (and without reports) it exits 0 once the run is created.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, NoReturn

EXIT_PASS, EXIT_GATE_FAILED, EXIT_OPERATIONAL, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3, 4
TERMINAL = {"completed", "failed", "cancelled"}
# The first of these that is set identifies this CI run, so a re-run of the job creates a new Vigilo run
# while a retried step within the same job gets the run it already created.
CI_RUN_ID_VARS = (
    "VIGILO_CI_RUN_ID",
    "GITHUB_RUN_ID",
    "CI_PIPELINE_ID",
    "BUILDKITE_BUILD_ID",
    "CIRCLE_WORKFLOW_ID",
    "BUILD_TAG",
    "BUILD_ID",
)
USER_AGENT = "vigilo-gate/1.0"


class UsageError(Exception):
    """Exit 3: bad arguments, unreachable server, refused credentials or input."""


class Api:
    def __init__(self, url: str, token: str, *, timeout: float = 60.0, retries: int = 4) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(f"--url {url!r} is not an http(s) URL")
        self.base = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bool = False,
    ) -> tuple[int, Any]:
        """Send a request; retry what is transient (connection errors, 429, 5xx) with backoff and jitter."""
        url = path if path.startswith("http") else f"{self.base}{path}"
        all_headers = {"Authorization": f"Bearer {self.token}", "User-Agent": USER_AGENT, **(headers or {})}
        if content_type:
            all_headers["Content-Type"] = content_type
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(url, data=body, method=method, headers=all_headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    data = resp.read()
                    return resp.status, data if raw else json.loads(data or b"null")
            except urllib.error.HTTPError as exc:
                data = exc.read()
                transient = exc.code == 429 or exc.code >= 500
                if transient and attempt < self.retries:
                    self._sleep(attempt, exc.headers.get("Retry-After"))
                    continue
                raise HttpError(exc.code, _error_of(data)) from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt < self.retries:
                    self._sleep(attempt, None)
                    continue
                reason = getattr(exc, "reason", exc)
                raise UsageError(f"cannot reach {self.base}: {reason}") from None
            except ValueError as exc:
                raise UsageError(f"{url} did not answer with JSON: {exc}") from None
        raise AssertionError("unreachable")

    @staticmethod
    def _sleep(attempt: int, retry_after: str | None) -> None:
        try:
            delay = float(retry_after) if retry_after else 0.0
        except ValueError:
            delay = 0.0
        time.sleep(min(30.0, max(delay, random.uniform(0, 0.5 * 2**attempt))))


class HttpError(Exception):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        self.status = status
        self.error = error
        super().__init__(f"HTTP {status}: {error.get('message', '')}")

    def describe(self) -> str:
        lines = [f"HTTP {self.status} {self.error.get('code', 'error')}: {self.error.get('message', '')}"]
        for field, messages in (self.error.get("fields") or {}).items():
            for message in messages if isinstance(messages, list) else [messages]:
                lines.append(f"  {field}: {message}")
        return "\n".join(lines)


def _error_of(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except ValueError:
        return {"code": "error", "message": data[:200].decode("utf-8", "replace")}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return {"code": "error", "message": str(body)[:200]}


def _ci_run_id() -> str:
    for name in CI_RUN_ID_VARS:
        value = os.environ.get(name)
        if value:
            attempt = os.environ.get("GITHUB_RUN_ATTEMPT", "") if name == "GITHUB_RUN_ID" else ""
            return f"{name}={value}{'.' + attempt if attempt else ''}"
    return ""


def idempotency_key(*, dataset: bytes, profile: bytes, name: str, target: dict[str, Any] | None = None) -> str:
    """Same inputs in the same CI run -> the same key (a retried step reuses its run)."""
    digest = hashlib.sha256()
    extra = [json.dumps(target, sort_keys=True).encode()] if target else []  # keys without a target stay as they were
    for part in (dataset, profile, name.encode(), *extra, _ci_run_id().encode()):
        digest.update(hashlib.sha256(part).digest())
    return f"vigilo-gate-{digest.hexdigest()[:48]}"


class Progress:
    """A bar on a terminal; plain lines every 10% otherwise (CI logs)."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.last_decile = -1

    def update(self, done: int, total: int, state: str) -> None:
        total = max(total, 1)
        frac = min(done / total, 1.0)
        if self.tty:
            bar = "#" * int(frac * 30)
            self.out.write(f"\r  [{bar:<30}] {done}/{total} results  {state:<10}")
            self.out.flush()
        elif int(frac * 10) > self.last_decile:
            self.last_decile = int(frac * 10)
            self.out.write(f"  progress: {done}/{total} results ({frac:.0%}), run {state}\n")
            self.out.flush()

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")


def _read(path: str, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"--{what} {path}: {exc.strerror or exc}") from None
    if not data.strip():
        raise UsageError(f"--{what} {path}: the file is empty")
    return data


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _examples(finding: dict[str, Any]) -> str:
    """The "; e.g. cases a, b" of a reason or a warning, or nothing when it has no example. A server from before
    reasons named their cases gives execution ids instead."""
    cases = finding.get("cases")
    label, shown = ("cases", cases) if cases is not None else ("executions", finding.get("examples") or [])
    names = ", ".join(str(name) for name in shown[:5])
    return f"; e.g. {label} {names}" if names else ""


def _usd(cost: float) -> str:
    return f"${cost:.4f}" if cost >= 0.01 or cost == 0 else f"${cost:.6f}"


def _usage_line(usage: dict[str, Any] | None) -> str:
    """The model calls' totals of the verdict's `model_usage`, or "" when the run called no model."""
    if not usage or not usage.get("calls"):
        return ""
    return (
        f"model usage: {usage['calls']} call(s) ({usage.get('cached_calls', 0)} cached), "
        f"{usage.get('total_tokens', 0):,} tokens ({usage.get('input_tokens', 0):,} in, "
        f"{usage.get('output_tokens', 0):,} out), cost {_usd(float(usage.get('cost_usd') or 0.0))}"
    )


def print_verdict(run: dict[str, Any], verdict: dict[str, Any] | None, out: Any) -> None:
    verdict = verdict or {}
    counts = verdict.get("counts", {})
    out.write(f"\nRun {run['id']}  {run.get('name', '')}\n")
    out.write(f"  state {run['state']}, gate {str(run['gate']).upper()}\n")
    if run.get("failure_reason"):
        out.write(f"  failure: {run['failure_reason']}\n")
    if counts:
        out.write(
            "  executions: {expected} expected, {passed} passed, {failed} failed, {error} error, "
            "{missing} missing\n".format(
                **{k: counts.get(k, 0) for k in ("expected", "passed", "failed", "error", "missing")}
            )
        )
    dims = verdict.get("dimensions", {})
    if dims:
        out.write("\n  dimension            mean   pass rate  error rate\n")
        for name, d in dims.items():
            out.write(
                f"  {name:<18} {_fmt(d.get('mean')):>6} {_fmt(d.get('pass_rate')):>11} "
                f"{_fmt(d.get('error_rate')):>11}\n"
            )
    for row in verdict.get("scorecard", []):
        mark = "ok  " if row.get("holds") else "FAIL"
        out.write(f"  scorecard {mark} {row.get('gate')}: observed {json.dumps(row.get('observed'))}\n")
    for title, findings in (("why the gate failed", verdict.get("reasons")), ("warnings", verdict.get("warnings"))):
        if findings:
            out.write(f"\n  {title}:\n")
            for f in findings:
                out.write(f"  - [{f.get('code')}] {f.get('message')} (count {f.get('count')}{_examples(f)})\n")
    agent = verdict.get("agent")
    if agent:
        out.write(
            f"\n  agent ({agent.get('protocol')} at {agent.get('url')}): {agent.get('outputs')} output(s) produced, "
            f"{agent.get('failed')} case(s) without output (agent_error)\n"
        )
    usage = _usage_line(verdict.get("model_usage"))
    if usage:
        out.write(f"\n  {usage}\n")
    out.write("\n")


def print_compare(data: dict[str, Any], out: Any) -> None:
    out.write(
        f"  compared with baseline {data['baseline']}: {data['changed']} of {data['cases_compared']} cases "
        "changed status\n"
    )
    for transition, count in data.get("transitions", {}).items():
        out.write(f"    {transition}: {count}\n")
    for name, d in data.get("dimensions", {}).items():
        delta = d.get("delta")
        out.write(
            f"    {name:<18} mean {_fmt(d.get('mean'))} (baseline {_fmt(d.get('baseline_mean'))}, "
            f"delta {'-' if delta is None else f'{delta:+.3f}'})\n"
        )
    for change in data.get("changes", [])[:10]:
        out.write(f"    {change['case_id']}: {change['baseline_status']} -> {change['status']}\n")


def exit_code_of(run: dict[str, Any]) -> int:
    if run["state"] in ("failed", "cancelled"):
        return EXIT_OPERATIONAL
    if run["state"] != "completed":
        return EXIT_TIMEOUT
    return EXIT_PASS if run["gate"] == "pass" else EXIT_GATE_FAILED


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would exit 2, which means "run failed" here.
        self.print_usage(sys.stderr)
        raise UsageError(message)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = _Parser(
        prog="vigilo-gate",
        description="Upload a dataset and a profile to Vigilo, run the evaluation, print the verdict, exit with "
        "0 gate passed / 1 gate failed / 2 run failed or cancelled / 3 usage or connection error / 4 timed out.",
    )
    p.add_argument("--url", default=os.environ.get("VIGILO_URL"), help="server URL (or VIGILO_URL)")
    p.add_argument("--token", default=os.environ.get("VIGILO_TOKEN"), help="API token (or VIGILO_TOKEN)")
    p.add_argument("--dataset", required=True, help="JSONL file, one case a line")
    p.add_argument("--dataset-name", default=None, help="dataset name (default: the file name without suffix)")
    p.add_argument("--profile", required=True, help="YAML profile")
    p.add_argument("--name", default="", help="a name for the run")
    p.add_argument("--wait", action="store_true", help="wait for the verdict (implied by --junit/--json/--baseline)")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for the verdict (default: forever)")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between progress polls")
    p.add_argument("--junit", default=None, help="write JUnit XML (one testcase per execution) here")
    p.add_argument("--json", dest="json_path", default=None, help="write the JSON report here")
    p.add_argument("--baseline", default=None, help="a run id to compare the result with")
    p.add_argument("--idempotency-key", default=None, help="override the key derived from the inputs and CI run id")
    p.add_argument(
        "--target-url", default=None, help="an agent endpoint that produces the outputs of cases without one"
    )
    p.add_argument(
        "--target-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a target setting, e.g. protocol=openai-chat, model=NAME, bearer_token_env=VAR (repeatable)",
    )
    args = p.parse_args(argv)
    args.target = _target(args.target_url, args.target_option)
    if not args.url:
        raise UsageError("--url (or VIGILO_URL) is required")
    if not args.token:
        raise UsageError("--token (or VIGILO_TOKEN) is required")
    if args.timeout is not None and args.timeout < 0:
        raise UsageError("--timeout must be >= 0")
    args.poll = min(max(args.poll, 0.05), 10.0)
    return args


def _target(url: str | None, options: list[str]) -> dict[str, Any] | None:
    """`--target-url` and `--target-option KEY=VALUE` (a JSON value, or else a string); the server checks it."""
    if not url:
        if options:
            raise UsageError("--target-option needs --target-url")
        return None
    target: dict[str, Any] = {"url": url}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--target-option {option!r}: expected KEY=VALUE")
        try:
            target[key.strip()] = json.loads(value)
        except ValueError:
            target[key.strip()] = value
    return target


def run(args: argparse.Namespace, out: Any, err: Any) -> int:
    api = Api(args.url, args.token)
    dataset = _read(args.dataset, "dataset")
    profile = _read(args.profile, "profile")
    dataset_name = args.dataset_name or Path(args.dataset).stem

    try:
        _, ds = api.request(
            "POST",
            f"/api/v1/datasets/?{urllib.parse.urlencode({'name': dataset_name})}",
            body=dataset,
            content_type="application/x-ndjson",
        )
        out.write(
            f"dataset {ds['dataset']} version {ds['id']}: {ds['case_count']} cases"
            f"{'' if ds['created'] else ' (already uploaded)'}\n"
        )
        _, pv = api.request("POST", "/api/v1/profiles/", body=profile, content_type="application/yaml")
        out.write(f"profile {pv['profile']} version {pv['id']}{'' if pv['created'] else ' (already uploaded)'}\n")
        key = args.idempotency_key or idempotency_key(
            dataset=dataset, profile=profile, name=args.name, target=args.target
        )
        request = {"dataset_version": ds["id"], "profile_version": pv["id"], "name": args.name}
        if args.target:
            request["target"] = args.target
        status, created = api.request(
            "POST",
            "/api/v1/runs/",
            body=json.dumps(request).encode(),
            content_type="application/json",
            headers={"Idempotency-Key": key},
        )
    except HttpError as exc:
        raise UsageError(exc.describe()) from None
    run_id = created["id"]
    out.write(
        f"run {run_id}: {created['expected_executions']} cases in {created['chunk_count']} chunks"
        f"{' (the run this Idempotency-Key created before)' if status == 200 else ''}\n"
    )
    out.flush()
    if not (args.wait or args.junit or args.json_path or args.baseline):
        return EXIT_PASS

    current = wait(api, run_id, timeout=args.timeout, poll=args.poll, out=out)
    if current["state"] not in TERMINAL:
        err.write(f"timed out after {args.timeout}s waiting for run {run_id} (state {current['state']})\n")
        return EXIT_TIMEOUT
    try:
        _, verdict = api.request("GET", f"/api/v1/runs/{run_id}/verdict/")
        print_verdict(current, verdict.get("verdict"), out)
        if args.baseline:
            query = urllib.parse.urlencode({"baseline": args.baseline})
            _, compared = api.request("GET", f"/api/v1/runs/{run_id}/compare/?{query}")
            print_compare(compared, out)
        if args.json_path:
            _, report = api.request("GET", f"/api/v1/runs/{run_id}/report.json", raw=True)
            Path(args.json_path).write_bytes(report)
            out.write(f"JSON report: {args.json_path}\n")
        if args.junit:
            _, xml = api.request("GET", f"/api/v1/runs/{run_id}/junit.xml", raw=True)
            Path(args.junit).write_bytes(xml)
            out.write(f"JUnit XML: {args.junit}\n")
    except HttpError as exc:
        raise UsageError(exc.describe()) from None
    except OSError as exc:
        raise UsageError(f"cannot write a report: {exc}") from None
    return exit_code_of(current)


def wait(api: Api, run_id: str, *, timeout: float | None, poll: float, out: Any) -> dict[str, Any]:
    deadline = None if timeout is None else time.monotonic() + timeout
    progress = Progress(out)
    while True:
        try:
            _, current = api.request("GET", f"/api/v1/runs/{run_id}/")
        except HttpError as exc:
            raise UsageError(exc.describe()) from None
        p = current.get("progress", {})
        progress.update(p.get("results_written", 0), p.get("results_expected", 0), current["state"])
        if current["state"] in TERMINAL:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
    progress.finish()
    return current


def main(argv: list[str] | None = None) -> NoReturn:
    try:
        args = parse_args(argv)
        code = run(args, sys.stdout, sys.stderr)
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        code = EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = EXIT_USAGE
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
