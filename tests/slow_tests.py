"""A test that takes seconds says why in its docstring (its name alone seldom can): one that does not is named
in the warnings at the end of the run, beside the ten slowest tests that `make test` lists, so a slow newcomer
is seen at once. A warning, not a failure: the same test takes twice as long on a slower machine."""

from __future__ import annotations

import inspect
import time

import pytest

SLOW_TEST_S = 5.0


class SlowTestWithoutReason(pytest.PytestWarning):
    """A test took seconds and its docstring does not say why it needs them."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    started = time.perf_counter()
    yield
    took = time.perf_counter() - started
    function = getattr(item, "function", None)
    if took >= SLOW_TEST_S and function is not None and not inspect.getdoc(function):
        item.warn(SlowTestWithoutReason(f"took {took:.1f} s: say in its docstring why it needs seconds"))
