"""Nothing of a sandbox may outlive it: no link or nftables table in the container
namespace, no named netns, no supervisor or workload process. The autouse
`no_leftovers` fixture (conftest.py) checks this after EVERY test that started a
supervisor; the tests here drive the supervisor through the ways it can end."""

import signal
import time

import world as W

READY = "sandbox-workload-ready"
SLEEPER = ["/bin/sh", "-c", "echo %s; exec sleep 60" % READY]


def policy(world):
    return world.policy_yaml([("api.allowed.test", 443), ("plain.allowed.test", 80)])


def start_ready(world):
    h = world.start_sandbox(policy(world), SLEEPER)
    if not h.wait_for_stdout(READY, timeout=20):
        res = h.wait(timeout=1)
        raise AssertionError("workload never became ready\n%s" % res)
    return h


def test_clean_after_normal_exit(world):
    r = world.run_sandbox(policy(world), ["/bin/true"])
    assert r.returncode == 0, str(r)
    assert world.wait_no_leftovers() == []


def test_clean_after_failed_workload_exec(world):
    r = world.run_sandbox(policy(world), ["/nonexistent/binary"])
    assert r.returncode != 0, str(r)
    assert world.wait_no_leftovers() == []


def test_clean_after_rejected_policy(world):
    r = world.run_sandbox("version: 1\nnetwork_policies: [this is not a map\n", ["/bin/true"])
    assert r.returncode != 0, str(r)
    assert world.wait_no_leftovers() == []


def test_leftover_check_sees_a_running_sandbox(world):
    """The check is not vacuous: while a sandbox runs, its processes show. Its network
    never shows in the container namespace: no link, no address, no nftables table (all
    of it is inside the sandbox's own namespace, so nothing there can outlive it)."""
    h = start_ready(world)
    try:
        found = world.leftovers()
        assert any(f.startswith("live processes") for f in found), found
        assert [f for f in found if not f.startswith("live processes")] == [], found
        addrs = W.run([W.IP, "-n", world.container_ns, "-4", "-o", "addr"]).stdout
        assert "10.200." not in addrs, addrs
        assert h.workload_pids(), "no workload process found for the run"
    finally:
        h.signal(signal.SIGTERM)
        h.wait(timeout=15)
    assert world.wait_no_leftovers() == []


def test_clean_after_sigterm(world):
    h = start_ready(world)
    t0 = time.monotonic()
    h.signal(signal.SIGTERM)
    res = h.wait(timeout=15)
    assert not res.timed_out, "supervisor ignored SIGTERM\n%s" % res
    assert time.monotonic() - t0 < 10, str(res)
    assert res.returncode != 0, str(res)
    assert world.wait_no_leftovers() == []


def test_clean_after_sigint(world):
    h = start_ready(world)
    h.signal(signal.SIGINT)
    res = h.wait(timeout=15)
    assert not res.timed_out, "supervisor ignored SIGINT\n%s" % res
    assert world.wait_no_leftovers() == []


def test_clean_after_timeout_flag(world):
    r = world.run_sandbox(policy(world), SLEEPER, extra_args=["--timeout", "1"], timeout=20)
    assert not r.timed_out, str(r)
    assert r.returncode != 0, str(r)
    assert r.duration < 10, str(r)
    assert world.wait_no_leftovers() == []


def test_sigkill_leaves_only_what_the_workload_holds(world):
    h = start_ready(world)
    workload = set(h.workload_pids())
    assert workload, "no workload process found"
    h.signal(signal.SIGKILL)
    h.proc.wait(timeout=10)

    # A new supervisor must start and work while the old workload may still hold its netns.
    r = world.run_sandbox(policy(world), ["curl", "-sS", "--max-time", "20",
                                          "http://plain.allowed.test/"])
    assert r.returncode == 0 and r.stdout.startswith("hello from plain.allowed.test\n"), str(r)

    # What may remain is the workload (the kernel frees its netns, and all in it, with it).
    survivors = set(h.pids())
    assert survivors <= workload, "processes other than the workload survived: %s" % (
        survivors - workload)
    h.kill_all()
    found = world.wait_no_leftovers(timeout=5.0)
    assert found == [], "left behind once the workload was gone: %s" % found


def test_next_start_works_after_sigkill_and_cleanup(world):
    h = start_ready(world)
    h.signal(signal.SIGKILL)
    h.proc.wait(timeout=10)
    h.kill_all()
    assert world.wait_no_leftovers() == []
    r = world.run_sandbox(policy(world), ["curl", "-sS", "--max-time", "20",
                                          "--cacert", world.ca_cert, "https://api.allowed.test/"])
    assert r.returncode == 0 and r.stdout.startswith("hello from api.allowed.test\n"), str(r)


def test_many_sequential_runs_leave_nothing(world):
    for _ in range(5):
        r = world.run_sandbox(policy(world), ["/bin/true"])
        assert r.returncode == 0, str(r)
    assert world.wait_no_leftovers() == []
    assert sorted(world.container_links()) == sorted(["lo", world.container_if])
    assert W.run([W.IP, "-n", world.container_ns, "route", "show", "default"]).stdout == ""
