"""A pytest plugin for mutation runs only (deploy/devstack/mutate.py gives it to mutmut).

Every test starts with the project's ``functools`` caches empty. A cache hides a mutant from
the tests twice over: mutmut records which tests call each function and runs a mutant with
those tests only, so a function called inside a cache (``paths.route`` compiles a path once)
is recorded for the one test that filled the cache, not for every test that reads through
it; and mutmut forks each mutant's run from a process that has run the tests already, whose
caches hold the unmutated code's results, so the mutant would not run at all.

Hypothesis does not shrink a failing example: a mutant is killed by any failure, and
shrinking one can take far longer than finding it."""

from __future__ import annotations

import sys

import pytest

SOURCE = ("consent.", "services.")


def clear_caches() -> int:
    """Empty every ``functools.lru_cache`` at the top of the project's modules; how many."""
    cleared = 0
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(SOURCE):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and hasattr(value, "cache_info"):
                clear()
                cleared += 1
    return cleared


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """After the suite's own profile is loaded, before any test module is imported (a
    test's ``@settings`` takes what it does not name from the profile loaded then)."""
    from hypothesis import Phase, settings

    settings.register_profile(
        "mutate", settings(), phases=[p for p in Phase if p is not Phase.shrink]
    )
    settings.load_profile("mutate")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    clear_caches()
