"""The workload on the terminal the supervisor was started on: `docker run -it` (the
supervisor leads the terminal's session) and a job of an interactive shell. The agent
runs in a process group of its own, so that group must be the terminal's foreground one
while it runs (else its first read stops it with SIGTTIN), and the supervisor's group
is the foreground again once it is gone. Each run gets a fresh pseudo-terminal."""

import os
import re
import select
import signal
import termios
import time

import pytest

PY = "/usr/bin/python3"
POLICY = """\
version: 1
process:
  run_as_user: "1500"
  run_as_group: "1500"
network_policies: {}
"""
READ_LINE = ["/bin/sh", "-c", "read x; echo got:$x"]

# A job-control shell in miniature, run as the terminal's session leader: starts
# argv[2:] (the supervisor) as a job in a group of its own, in the foreground (argv[1]
# "fg" or "fg-resume") or not ("bg"), waits for it to exit or stop, and then says which
# group holds the terminal: the job's ("supervisor"), its own ("shell") or another
# ("other"). A stopped job is killed, or with "fg-resume" reported and continued in
# the foreground, as `fg` does (at most twice).
JOB_SHELL = r"""
import os, signal, sys
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    if sys.argv[1].startswith("fg"):
        os.tcsetpgrp(0, os.getpid())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
    os.execv(sys.argv[2], sys.argv[2:])
try:
    os.setpgid(pid, pid)
except OSError:
    pass  # the job got there first and has exec'd
for resumes in range(3):
    _, status = os.waitpid(pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        break
    os.tcsetpgrp(0, os.getpgrp())
    print("JOB stopped=%d" % os.WSTOPSIG(status), flush=True)
    if sys.argv[1] != "fg-resume" or resumes == 2:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        sys.exit(1)
    os.tcsetpgrp(0, pid)
    os.kill(-pid, signal.SIGCONT)
fg = os.tcgetpgrp(0)
where = "supervisor" if fg == pid else "shell" if fg == os.getpgrp() else "other"
print("JOB rc=%d foreground=%s" % (os.waitstatus_to_exitcode(status), where), flush=True)
"""


@pytest.fixture
def pty_pair():
    """(master fd, slave fd, slave path); both ends are closed after the test."""
    master, slave = os.openpty()
    try:
        yield master, slave, os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


def read_until(master, pattern, timeout=10):
    """What the terminal showed until regex `pattern` (bytes) matched (or timeout)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, buf):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([master], [], [], left)[0]:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: no slave end is open any more
            break
        if not chunk:
            break
        buf += chunk
    return buf


def shown(out, r):
    return "--- terminal:\n%s\n%s" % (out.decode(errors="replace"), r)


def set_tostop(slave):
    attrs = termios.tcgetattr(slave)
    attrs[3] |= termios.TOSTOP
    termios.tcsetattr(slave, termios.TCSANOW, attrs)


def test_interactive_workload_reads_the_terminal(world, pty_pair):
    """docker run -it: the supervisor leads the terminal's session and stays in the
    foreground group; the agent must get the terminal or `read` stops it for good."""
    master, _, slave_path = pty_pair
    h = world.start_sandbox(POLICY, READ_LINE, terminal=slave_path, terminal_stdio=True)
    os.write(master, b"hello\n")
    out = read_until(master, b"got:hello")
    r = h.wait(timeout=10)
    assert b"got:hello" in out, shown(out, r)
    assert r.returncode == 0, shown(out, r)


def test_shell_job_gets_the_terminal_back(world, pty_pair):
    """Started in the foreground by an interactive shell (with `stty tostop`): the agent
    reads the terminal, the supervisor's log lines while the agent holds it do not stop
    the supervisor, and its group holds the terminal again when it exits."""
    master, slave, slave_path = pty_pair
    set_tostop(slave)
    h = world.start_sandbox(POLICY, READ_LINE, extra_args=["--log-level", "info"],
                            terminal=slave_path, terminal_stdio=True,
                            wrapper=[PY, "-c", JOB_SHELL, "fg"])
    os.write(master, b"hello\n")
    out = read_until(master, rb"JOB .*\n")
    r = h.wait(timeout=10)
    assert b"got:hello" in out, shown(out, r)
    assert b"JOB rc=0 foreground=supervisor" in out, shown(out, r)


def test_background_job_leaves_the_terminal_alone(world, pty_pair):
    """Started in the background: the shell keeps the terminal."""
    master, _, slave_path = pty_pair
    h = world.start_sandbox(POLICY, ["/bin/echo", "ran"], terminal=slave_path,
                            terminal_stdio=True, wrapper=[PY, "-c", JOB_SHELL, "bg"])
    out = read_until(master, rb"JOB .*\n")
    r = h.wait(timeout=10)
    assert b"ran" in out, shown(out, r)
    assert b"JOB rc=0 foreground=shell" in out, shown(out, r)


# ---- Ctrl-Z -------------------------------------------------------------------------

# Says it runs, then reads a line: stopped by Ctrl-Z while it waits for it.
CTRL_Z_WORKLOAD = ["/bin/sh", "-c", "echo waiting; read x; echo got:$x"]
CTRL_Z = b"\x1a"  # VSUSP of a fresh pseudo-terminal


def test_ctrl_z_without_job_control_does_not_hang_the_workload(world, pty_pair):
    """docker run -it: nobody above the supervisor could resume a stopped workload, so
    Ctrl-Z must not leave it stopped for good (a container's PID 1 ignores it)."""
    master, _, slave_path = pty_pair
    h = world.start_sandbox(POLICY, CTRL_Z_WORKLOAD, terminal=slave_path,
                            terminal_stdio=True)
    out = read_until(master, b"waiting")
    os.write(master, CTRL_Z)
    time.sleep(0.5)  # the stop and its handling, before the line it must read
    os.write(master, b"after\n")
    out += read_until(master, b"got:after")
    r = h.wait(timeout=10)
    assert b"got:after" in out, shown(out, r)
    assert r.returncode == 0, shown(out, r)


def test_ctrl_z_stops_the_shell_job_and_fg_continues_it(world, pty_pair):
    """Started by an interactive shell: Ctrl-Z stops the job the shell knows (the
    supervisor's), and `fg` gives the terminal back to the workload, which goes on."""
    master, _, slave_path = pty_pair
    h = world.start_sandbox(POLICY, CTRL_Z_WORKLOAD, terminal=slave_path,
                            terminal_stdio=True, wrapper=[PY, "-c", JOB_SHELL, "fg-resume"])
    out = read_until(master, b"waiting")
    os.write(master, CTRL_Z)
    out += read_until(master, rb"JOB stopped=\d+")
    os.write(master, b"resumed\n")
    out += read_until(master, rb"JOB rc.*\n")
    r = h.wait(timeout=10)
    assert b"JOB stopped=%d" % signal.SIGTSTP in out, shown(out, r)
    assert b"got:resumed" in out, shown(out, r)
    assert b"JOB rc=0 foreground=supervisor" in out, shown(out, r)


# Runs argv[1:] (the supervisor) in a process group of its own in this session, with
# no terminal anywhere, and says whether it exited or stopped: a launcher that is not a
# job-control shell (a CI runner, a service manager's helper) resumes nothing.
GROUP_LAUNCHER = r"""
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.execv(sys.argv[1], sys.argv[1:])
_, status = os.waitpid(pid, os.WUNTRACED)
if os.WIFSTOPPED(status):
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print("LAUNCHER stopped=%d" % os.WSTOPSIG(status), flush=True)
    sys.exit(1)
print("LAUNCHER rc=%d" % os.waitstatus_to_exitcode(status), flush=True)
"""


def test_workload_stopping_itself_without_a_terminal_does_not_stop_the_supervisor(world):
    """Without a terminal there is no job to stop: a workload that sends itself SIGTSTP
    goes on, and the supervisor (its timeout, proxy and SSH server) never stops."""
    h = world.start_sandbox(POLICY, ["/bin/sh", "-c", "kill -TSTP $$; echo went-on"],
                            wrapper=[PY, "-c", GROUP_LAUNCHER])
    r = h.wait(timeout=20)
    assert "went-on" in r.stdout, str(r)
    assert "LAUNCHER rc=0" in r.stdout, str(r)


# ---- terminal injection through the controlling terminal alone ------------------------

TIOCSTI_PROBE = r"""
import errno, fcntl, os, termios
fd = os.open("/dev/tty", os.O_RDWR)
try:
    fcntl.ioctl(fd, termios.TIOCSTI, b"x")
    print("TIOCSTI allowed")
except OSError as e:
    print("TIOCSTI " + errno.errorcode.get(e.errno, str(e.errno)))
"""


def seccomp_profile(r):
    """The seccomp profile named by the startup confinement event, or None."""
    for line in r.audit_lines:
        if isinstance(line.get("seccomp"), dict):
            return line["seccomp"].get("profile")
    return None


def test_controlling_terminal_alone_gets_the_injection_filter(world, pty_pair):
    """`nohup openshell-sandbox ... </dev/null >log 2>&1 &` from a root shell: no stdio is
    a terminal, yet the agent, in the supervisor's session, opens its controlling terminal
    as /dev/tty. With seccomp off, TIOCSTI there must still be denied (profile minimal)."""
    _, _, slave_path = pty_pair
    r = world.start_sandbox(POLICY, [PY, "-c", TIOCSTI_PROBE],
                            terminal=slave_path).wait(timeout=20)
    assert r.returncode == 0, str(r)
    assert r.stdout.strip() == "TIOCSTI EPERM", str(r)
    assert seccomp_profile(r) == "minimal", str(r)


def test_no_terminal_at_all_keeps_seccomp_off(world):
    """The control: no controlling terminal and no terminal on stdio, policy off."""
    r = world.run_sandbox(POLICY, ["/bin/true"])
    assert r.returncode == 0, str(r)
    assert seccomp_profile(r) == "off", str(r)
