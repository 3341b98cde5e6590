"""The suite names a slow test that does not say why it is slow."""

from __future__ import annotations

import pytest

from tests import slow_tests

pytest_plugins = ["pytester"]

WAITING_TESTS = '''
import time

def test_quick():
    pass

def test_silent():
    time.sleep(0.1)

def test_explained():
    """Waits for a timer on purpose."""
    time.sleep(0.1)
'''


def test_a_slow_test_without_a_reason_is_named_and_one_with_a_reason_is_not(pytester: pytest.Pytester,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slow_tests, "SLOW_TEST_S", 0.05)
    pytester.makeconftest("pytest_plugins = ['tests.slow_tests']")
    pytester.makepyfile(test_waits=WAITING_TESTS)
    result = pytester.runpytest_inprocess("-p", "no:xdist", "-p", "no:cacheprovider", "-W",
                                         "ignore::pytest.PytestAssertRewriteWarning")
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(["*test_silent*", "*SlowTestWithoutReason: took 0.* s: say in its docstring why*"])
    assert "test_explained" not in result.stdout.str() and "test_quick" not in result.stdout.str()
    monkeypatch.undo()  # the outer run's own check reads the same threshold
