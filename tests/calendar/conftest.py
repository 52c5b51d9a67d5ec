"""The calendar suite shares the end-to-end fixtures (leadbot + the simulated WeCom)."""

from tests.e2e.conftest import wecom  # noqa: F401
