"""Fixtures of the integration tests: see tests/README.md ("Fixture API")."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import world as world_mod  # noqa: E402


def pytest_configure(config):
    # `slow`: runs in `make check`; deselect while iterating with -m "not slow".
    config.addinivalue_line("markers", "slow: a long test (e.g. the 150 s idle WebSocket)")


def pytest_collection_modifyitems(config, items):
    problem = world_mod.environment_problem()
    if problem:
        mark = pytest.mark.skip(reason=problem)
        for item in items:
            item.add_marker(mark)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "_osworld_rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def world():
    problem = world_mod.environment_problem()
    if problem:
        pytest.skip(problem)
    w = world_mod.World.create()
    try:
        yield w
    finally:
        w.close()


@pytest.fixture(autouse=True)
def no_leftovers(request):
    """After a test that started a supervisor, nothing of it may remain."""
    if "world" not in request.fixturenames:
        yield
        return
    w = request.getfixturevalue("world")
    before = w.runs_started
    yield
    if w.runs_started == before:
        return
    call = getattr(request.node, "_osworld_rep_call", None)
    if call is not None and not call.passed:
        w.scrub()  # the test already failed; leave the next one a clean world
        return
    found = w.wait_no_leftovers(timeout=5.0)
    if found:
        w.scrub()
        pytest.fail("left behind after the test:\n  " + "\n  ".join(found), pytrace=False)
