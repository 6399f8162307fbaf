"""A missing capability is a skip on an ordinary machine and a failure where required."""

import pytest

import capabilities


def test_missing_capability_skips_by_default(monkeypatch):
    monkeypatch.setattr(capabilities, "REQUIRED", False)
    with pytest.raises(pytest.skip.Exception, match="no PID namespace"):
        capabilities.unavailable("no PID namespace")


def test_missing_capability_fails_where_required(monkeypatch):
    monkeypatch.setattr(capabilities, "REQUIRED", True)
    with pytest.raises(pytest.fail.Exception, match="SELFTAUGHT_REQUIRE_CONTAINMENT=1 but no PID namespace"):
        capabilities.unavailable("no PID namespace")
