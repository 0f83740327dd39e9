from tests.api.conftest import finished_run, versions  # noqa: F401  (shared fixtures)
