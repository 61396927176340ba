"""The workload as a user sees it: identity, environment, exit codes, signals,
timeouts, reaping. Runs the real supervisor in the throwaway container of the
test world (tests/README.md)."""

import json
import os
import re
import signal
import tempfile
import time

import pytest

POLICY_1500 = """\
version: 1
process:
  run_as_user: "1500"
  run_as_group: "1600"
network_policies: {}
"""

PROXY_VARS = ["ALL_PROXY", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
              "https_proxy", "no_proxy", "grpc_proxy", "NODE_USE_ENV_PROXY"]


def status_fields(text):
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def test_workload_runs_as_policy_user_without_privileges(world):
    r = world.run_sandbox(POLICY_1500, ["/bin/sh", "-c",
                                        "id -u; id -g; id -G; cat /proc/self/status"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "1500"
    assert lines[1] == "1600"
    assert lines[2].split() == ["1600"]  # no supplementary group inherited from root
    st = status_fields(r.stdout)
    assert st["CapBnd"] == "0000000000000000"
    assert st["CapEff"] == "0000000000000000"
    assert st["CapPrm"] == "0000000000000000"
    assert st["CapAmb"] == "0000000000000000"
    assert st["NoNewPrivs"] == "1"
    assert st["Uid"].split() == ["1500"] * 4
    assert st["Gid"].split() == ["1600"] * 4


def test_default_policy_runs_as_sandbox_or_nobody(world):
    expected = "65534"
    with open("/etc/passwd") as f:
        for line in f:
            parts = line.split(":")
            if parts[0] == "sandbox":
                expected = parts[2]
    r = world.run_sandbox(None, ["/bin/sh", "-c", "id -u"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == expected


def test_root_user_is_refused(world):
    r = world.run_sandbox(POLICY_1500.replace('"1500"', '"0"'), ["/bin/true"])
    assert r.returncode == 1
    assert "run_as_user" in r.stderr


@pytest.mark.parametrize("plant", ["symlink", "file"])
def test_audit_log_planted_by_another_user_is_refused(world, plant):
    """--audit-log in a directory others can write (a shared workspace): a symlink or a
    file another user put there is refused at start, and nothing is appended anywhere."""
    stamp = time.monotonic_ns()
    shared = world.dir / ("shared-%s-%d" % (plant, stamp))
    shared.mkdir()
    os.chmod(shared, 0o1777)
    victim = world.dir / ("victim-%d" % stamp)
    victim.write_text("root data\n")
    path = shared / "audit.jsonl"
    if plant == "symlink":
        os.symlink(victim, path)
        os.lchown(path, 1500, 1500)
    else:
        path.write_text("")
        os.chown(path, 1500, 1500)
    r = world.run_sandbox(POLICY_1500, ["/bin/true"], audit=False,
                          extra_args=["--audit-log", str(path)])
    assert r.returncode != 0, str(r)
    why = "not owned by root" if plant == "symlink" else "owned by another user"
    assert "--audit-log %s: " % path in r.stderr and why in r.stderr, str(r)
    assert victim.read_text() == "root data\n"
    if plant == "file":
        assert path.read_text() == ""


def test_audit_log_through_a_root_owned_symlink_works(world):
    """/dev/stderr is a root-owned symlink: container set-ups that log to it keep working."""
    r = world.run_sandbox(POLICY_1500, ["/bin/true"], audit=False,
                          extra_args=["--audit-log", "/dev/stderr"])
    assert r.returncode == 0, str(r)
    assert '"class_uid"' in r.stderr, str(r)


def test_proxy_environment_present(world):
    env = {"NO_PROXY": "corp.internal", "OPENSHELL_SANDBOX_TOKEN": "do-not-leak"}
    r = world.run_sandbox(POLICY_1500, ["/usr/bin/env"], env=env)
    assert r.returncode == 0, r.stderr
    got = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    for name in PROXY_VARS:
        assert name in got, f"{name} missing from the workload environment"
    url = got["HTTPS_PROXY"]
    assert re.fullmatch(r"http://10\.200\.\d+\.1:3128", url), url
    for name in ["ALL_PROXY", "HTTP_PROXY", "http_proxy", "https_proxy", "grpc_proxy"]:
        assert got[name] == url
    assert got["NODE_USE_ENV_PROXY"] == "1"
    assert got["NO_PROXY"].split(",")[:3] == ["127.0.0.1", "localhost", "::1"]
    assert "corp.internal" in got["NO_PROXY"].split(",")
    assert got["OPENSHELL_SANDBOX"] == "1"
    assert "OPENSHELL_SANDBOX_TOKEN" not in got


def test_proxy_port_flag_changes_the_url(world):
    r = world.run_sandbox(POLICY_1500, ["/bin/sh", "-c", "echo $HTTP_PROXY"],
                          extra_args=["--proxy-port", "8123"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith(":8123")


@pytest.mark.parametrize("script,code", [
    ("exit 0", 0),
    ("exit 3", 3),
    ("kill -9 $$", 137),
    ("kill -15 $$", 143),
])
def test_exit_codes_propagate(world, script, code):
    r = world.run_sandbox(POLICY_1500, ["/bin/sh", "-c", script])
    assert r.returncode == code, r.stderr


def test_timeout_exits_124(world):
    start = time.monotonic()
    r = world.run_sandbox(POLICY_1500, ["/bin/sleep", "60"], extra_args=["--timeout", "1"])
    elapsed = time.monotonic() - start
    assert r.returncode == 124, r.stderr
    assert elapsed < 30


def test_timeout_kills_a_workload_that_ignores_sigterm(world):
    r = world.run_sandbox(POLICY_1500, ["/bin/sh", "-c", "trap '' TERM; sleep 60; sleep 60"],
                          extra_args=["--timeout", "1"])
    assert r.returncode == 124, r.stderr


def test_sigterm_reaches_the_workload(world):
    h = world.start_sandbox(POLICY_1500, ["/bin/sh", "-c",
                                          "trap 'echo got-term; exit 42' TERM; "
                                          "echo ready; while :; do sleep 0.1; done"])
    h.wait_for_stdout("ready", timeout=20)
    h.signal(signal.SIGTERM)
    r = h.wait(timeout=20)
    assert r.returncode == 42, r.stderr
    assert "got-term" in r.stdout


def test_workdir_and_exec_failure(world):
    # pytest's tmp_path sits below a 0700 directory the agent cannot enter.
    d = tempfile.mkdtemp(prefix="osh-workdir-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        r = world.run_sandbox(POLICY_1500, ["/bin/pwd"], extra_args=["--workdir", d])
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == d
        r = world.run_sandbox(POLICY_1500, ["/bin/pwd"],
                              extra_args=["--workdir", "/nonexistent-workdir"])
        assert r.returncode == 1
        assert "workdir" in r.stderr
    finally:
        os.rmdir(d)
    r = world.run_sandbox(POLICY_1500, ["/nonexistent/agent"])
    assert r.returncode == 1
    assert "/nonexistent/agent" in r.stderr


def test_process_spec_from_environment(world):
    spec = '{"version":1,"command":["/bin/sh","-c","printf %s \\"a b\\""],"tty":false}'
    r = world.run_sandbox(POLICY_1500, [], env={"OPENSHELL_MAIN_PROCESS_SPEC": spec})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "a b"
    r = world.run_sandbox(POLICY_1500, [],
                          env={"OPENSHELL_MAIN_PROCESS_SPEC": '{"version":2,"command":["x"]}'})
    assert r.returncode == 1
    assert "unsupported" in r.stderr


ORPHANS = r"""
import os, time
sup = os.getppid()
for _ in range(5):
    if os.fork() == 0:          # child
        if os.fork() == 0:      # grandchild: exits at once, orphaned
            os._exit(0)
        os._exit(0)
    os.wait()
time.sleep(0.5)
zombies = []
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z" and int(fields[1]) == sup:
        zombies.append(pid)
print("zombies:", len(zombies))
"""


def test_orphans_are_reaped(world):
    r = world.run_sandbox(POLICY_1500, ["/usr/bin/python3", "-c", ORPHANS])
    assert r.returncode == 0, r.stderr
    assert "zombies: 0" in r.stdout


def test_escaped_background_process_is_killed_at_exit(world):
    r = world.run_sandbox(POLICY_1500, ["/bin/sh", "-c",
                                        "setsid sleep 300 >/dev/null 2>&1 & echo $!"])
    assert r.returncode == 0, r.stderr
    pid = int(r.stdout.strip())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}"), "a process of the sandbox outlived the supervisor"


# Every descriptor the workload holds, with what it points at (0..2 included).
FD_LIST = r"""
import json, os
out = {}
for fd in range(0, 4096):
    try:
        os.fstat(fd)
    except OSError:
        continue
    try:
        out[fd] = os.readlink("/proc/self/fd/%d" % fd)
    except OSError as e:
        out[fd] = "?%s" % e
print(json.dumps(out))
"""


def test_no_supervisor_descriptor_leaks_into_the_workload(world):
    """Nothing the supervisor holds (netns fd, Landlock ruleset, proxy and capture
    sockets, audit log, netlink, the spawn status pipe) may be inherited."""
    pol = POLICY_1500 + "filesystem_policy:\n  read_only: [/usr, /lib, /etc]\n" \
        "  read_write: [/tmp]\n"
    r = world.run_sandbox(pol, ["/usr/bin/python3", "-c", FD_LIST])
    assert r.returncode == 0, str(r)
    fds = {int(k): v for k, v in json.loads(r.stdout.strip().splitlines()[-1]).items()}
    extra = {k: v for k, v in fds.items() if k > 2}
    assert extra == {}, str(r)
