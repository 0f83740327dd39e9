"""The exit codes of every Vigilo command, in one place (the table is in docs/operations.md and the README).

A release pipeline branches on these, so each means one thing whatever the command:
"""

from __future__ import annotations

from typing import Final

OK: Final = 0  # the gate passed; the command did what was asked (an evaluator completed or abstained)
FAILED: Final = 1  # the gate failed (the run completed; policy said no); evaluator_try: an `error` result
OPERATIONAL: Final = 2  # the work failed operationally (chunks past their recovery limit) or was cancelled
USAGE: Final = 3  # usage error: a bad argument, a missing file, malformed input, an unknown evaluator
TIMEOUT: Final = 4  # timed out waiting (`--timeout`), or `vigilo_status` of a run still in progress without --wait
