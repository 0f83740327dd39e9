"""Running Vigilo's command line in the test process."""

from __future__ import annotations

import pytest
from django.core.management import call_command


def run_cli(capsys, *args) -> tuple[int, str]:
    """`vigilo_run *args`: its exit code, and what it wrote (stdout then stderr)."""
    with pytest.raises(SystemExit) as info:
        call_command("vigilo_run", *args)
    captured = capsys.readouterr()
    return info.value.code, captured.out + captured.err
