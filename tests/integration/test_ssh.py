"""The embedded SSH server (ssh-relay/, issue 6), driven with the real OpenSSH client
(ssh, scp, sftp) through a ProxyCommand that bridges to the supervisor's Unix socket.

The supervisor runs in the world's container namespace and a private mount namespace;
the socket lives under the world directory (/tmp/osw-<id>/), which both sides see, so
the client here, on the host side, reaches it with `socat - UNIX-CONNECT:<sock>`.
Session children must get exactly the workload's sandbox: identity, environment,
network namespace and policy.
"""

import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from contextlib import contextmanager

import pytest

import world as W

SSH = "/usr/bin/ssh"
PROXY_VARS = ["ALL_PROXY", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
              "https_proxy", "no_proxy", "grpc_proxy", "NODE_USE_ENV_PROXY"]
WAIT_WORKLOAD = ["/bin/sh", "-c", "echo ready; exec sleep 600"]
SESSION_GRACE = 5.0     # seconds for a hung-up session to disappear


def _need(path, pkg):
    if not os.access(path, os.X_OK):
        pytest.skip("%s missing (install %s; scripts/deps.sh does)" % (path, pkg))


@pytest.fixture(scope="module")
def ssh_ready(world):
    _need(SSH, "openssh-client")
    _need("/usr/bin/socat", "socat")
    world.require_binary()
    try:
        helptext = subprocess.run([world.sandbox_bin, "--help"], capture_output=True,
                                  text=True, timeout=10)
    except OSError as e:
        pytest.skip("cannot run the supervisor: %s" % e)
    if "--ssh-socket-path" not in helptext.stdout + helptext.stderr:
        pytest.skip("the supervisor has no --ssh-socket-path yet")
    return world


def new_socket_path(world):
    return str(world.dir / ("ssh-" + secrets.token_hex(4)) / "ssh.sock")


def ssh_opts(sock):
    return ["-F", "/dev/null", "-o", "ProxyCommand=socat - UNIX-CONNECT:" + sock,
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20"]


def ssh_argv(sock, *remote, extra=()):
    return [SSH, *ssh_opts(sock), *extra, "sandbox", *remote]


def ssh(sock, *remote, extra=(), input=None, timeout=60):
    return subprocess.run(ssh_argv(sock, *remote, extra=extra), input=input,
                          capture_output=True, text=True, timeout=timeout)


def wait_for(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


@contextmanager
def ssh_sandbox(world, policy_yaml, argv=WAIT_WORKLOAD, ready="ready", extra_args=(),
                env=None, sock=None):
    """A running supervisor with its SSH socket up; stopped (SIGTERM) afterwards."""
    sock = sock or new_socket_path(world)
    args = list(extra_args)
    if env is None or "OPENSHELL_SSH_SOCKET_PATH" not in env:
        args = ["--ssh-socket-path", sock, *args]
    h = world.start_sandbox(policy_yaml, argv, extra_args=args, env=env)
    try:
        assert h.wait_for_stdout(ready, timeout=20), "workload not ready\n%s" % h.wait(5)
        assert wait_for(lambda: os.path.exists(sock), 10), \
            "no SSH socket at %s\n%s" % (sock, h.stderr())
        yield h, sock
    finally:
        h.signal(signal.SIGTERM)
        h.wait(15)   # on a timeout the run is killed; no_leftovers reports it


def policy(world, endpoints=(), extra="", run_as="1500"):
    return world.policy_yaml(list(endpoints), run_as=run_as, extra=extra)


def env_of(text):
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


# ---- identity, environment, network ----------------------------------------------------

def test_session_env_identity_and_socket_modes(ssh_ready):
    world = ssh_ready
    with ssh_sandbox(world, policy(world)) as (h, sock):
        st = os.lstat(sock)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
        assert st.st_uid == 0
        assert stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode) == 0o700

        r = ssh(sock, "env", extra=["-o", "SetEnv=FOO_FROM_CLIENT=yes HTTP_PROXY=http://evil:1 "
                                          "OPENSHELL_SANDBOX=0 LC_PAPER=osw-paper"])
        assert r.returncode == 0, r
        env = env_of(r.stdout)
        for k in PROXY_VARS:
            assert k in env, "%s missing from the SSH session env:\n%s" % (k, r.stdout)
        assert env["HTTP_PROXY"].startswith("http://10.200."), env
        assert env["NO_PROXY"].startswith("127.0.0.1,localhost,::1"), env
        assert env["NODE_USE_ENV_PROXY"] == "1"
        assert env["OPENSHELL_SANDBOX"] == "1"
        assert env.get("FOO_FROM_CLIENT") == "yes", "allowed client env var lost"
        assert env.get("LC_PAPER") == "osw-paper"
        workload = h.workload_environ()
        for k in PROXY_VARS:
            assert env[k] == workload.get(k), (k, env[k], workload.get(k))
        assert not any(k.startswith("OPENSHELL_SANDBOX_TOKEN") for k in env), env

        r = ssh(sock, "id -u; id -g")
        assert r.returncode == 0, r
        assert r.stdout.split() == ["1500", "1500"], r


def test_session_network_obeys_policy(ssh_ready):
    world = ssh_ready
    pol = policy(world, [("api.allowed.test", 443), ("plain.allowed.test", 80)])
    with ssh_sandbox(world, pol) as (h, sock):
        r = ssh(sock, "curl -sS --max-time 20 --cacert %s https://api.allowed.test/"
                % world.ca_cert)
        assert r.returncode == 0, r
        assert r.stdout.startswith("hello from api.allowed.test\n"), r
        assert "peer=%s\n" % W.CONTAINER_IP in r.stdout, "not through the proxy\n%s" % r

        mark = world.http_mark()
        r = ssh(sock, "curl -sS --max-time 20 -w '\\n%{http_code}' http://denied.test/secret")
        body, _, code = r.stdout.rpartition("\n")
        assert code == "403", r
        j = json.loads(body)
        assert j["error"] == "policy_denied" and j["host"] == "denied.test", j
        assert world.http_requests(mark) == []

        r = ssh(sock, "ip -o addr")
        assert r.returncode == 0, r
        assert " 10.200." in r.stdout, "no sandbox veth address in the session:\n%s" % r.stdout
        # no direct route out: a direct connection is captured and decided by the
        # policy (or refused by the fence), exactly as for the workload
        r = ssh(sock, "curl -sS --noproxy '*' --max-time 5 http://198.51.100.11/")
        assert "hello from" not in r.stdout and (r.returncode != 0 or
                                                 '"policy_denied"' in r.stdout), r


def test_sessions_get_the_workload_confinement(ssh_ready):
    """Landlock and seccomp of the policy apply to session children, pty included."""
    world = ssh_ready
    extra = ("filesystem_policy:\n  include_workdir: false\n"
             "  read_only: [/usr, /lib, /etc, /bin]\n  read_write: [/tmp]\n"
             "landlock:\n  compatibility: best_effort\n")
    # writable for uid 1500 as far as DAC goes, outside the policy: only Landlock denies
    outside = tempfile.mkdtemp(prefix="osw-ssh-ll-", dir="/var/tmp")
    os.chmod(outside, 0o777)
    try:
        with ssh_sandbox(world, policy(world, extra=extra)) as (h, sock):
            r = ssh(sock, "touch /tmp/osw-ssh-ok-$$ && rm /tmp/osw-ssh-ok-$$ && echo tmp-ok; "
                          "touch %s/denied; echo rc=$?" % outside)
            assert r.stdout.startswith("tmp-ok\n"), r
            assert "rc=1" in r.stdout and not os.path.exists(outside + "/denied"), r
            _check_pty_and_privileges(sock)
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def _check_pty_and_privileges(sock):
    r = ssh(sock, "stty size; tty; echo pty-ok", extra=["-tt"])
    assert "pty-ok" in r.stdout and "/dev/pts/" in r.stdout, r
    status = ssh(sock, "cat /proc/self/status").stdout
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert fields["NoNewPrivs"].strip() == "1", status
    assert fields["CapEff"].strip() == "0000000000000000", status


# ---- exec, exit statuses, pty -----------------------------------------------------------

def test_exit_statuses_reach_the_client(ssh_ready):
    world = ssh_ready
    with ssh_sandbox(world, policy(world)) as (h, sock):
        assert ssh(sock, "true").returncode == 0
        assert ssh(sock, "exit 7").returncode == 7
        assert ssh(sock, "kill -TERM $$").returncode == 128 + signal.SIGTERM
        assert ssh(sock, "kill -KILL $$").returncode == 128 + signal.SIGKILL
        r = ssh(sock, "echo out; echo err >&2; exit 3")
        assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n"), r
        r = ssh(sock, "cat; echo end", input="line1\nline2\n")
        assert r.stdout == "line1\nline2\nend\n", r
        # exec is /bin/sh -c, not a login shell: the words arrive as one command line
        r = ssh(sock, "echo", "a", "'b  c'")
        assert r.stdout == "a b  c\n", r


def _tmux(*args, check=True):
    return subprocess.run(["tmux", "-L", "osw-ssh-test", *args], capture_output=True,
                          text=True, timeout=10, check=check)


def _pane(session):
    return _tmux("capture-pane", "-p", "-t", session).stdout


def test_interactive_pty_under_tmux(ssh_ready):
    world = ssh_ready
    _need("/usr/bin/tmux", "tmux")
    with ssh_sandbox(world, policy(world)) as (h, sock):
        session = "s" + secrets.token_hex(3)
        cmd = shlex.join(ssh_argv(sock, extra=["-t"]))
        _tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd)
        try:
            assert wait_for(lambda: _pane(session).strip() != "", 15), "no prompt"
            _tmux("send-keys", "-t", session, "echo hi-$((40+2))", "Enter")
            assert wait_for(lambda: "hi-42" in _pane(session).splitlines(), 10), _pane(session)
            _tmux("send-keys", "-t", session, "stty size", "Enter")
            assert wait_for(lambda: "30 100" in _pane(session).splitlines(), 10), _pane(session)
            _tmux("resize-window", "-t", session, "-x", "120", "-y", "40")
            _tmux("send-keys", "-t", session, "clear; stty size", "Enter")
            assert wait_for(lambda: "40 120" in _pane(session).splitlines(), 10), _pane(session)
            _tmux("send-keys", "-t", session, "tty; id -u", "Enter")
            assert wait_for(lambda: "1500" in _pane(session).splitlines(), 10), _pane(session)
            assert "/dev/pts/" in _pane(session)
            _tmux("send-keys", "-t", session, "exit", "Enter")
            assert wait_for(lambda: _tmux("has-session", "-t", session,
                                          check=False).returncode != 0, 10)
        finally:
            _tmux("kill-server", check=False)


# ---- file transfer ----------------------------------------------------------------------

def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_scp_and_sftp_copy_10mib_both_ways(ssh_ready, tmp_path):
    world = ssh_ready
    _need("/usr/lib/openssh/sftp-server", "openssh-sftp-server")
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(10 * 1024 * 1024))
    want = _sha256(src)
    inside = world.dir / ("xfer-" + secrets.token_hex(4))
    inside.mkdir()
    os.chmod(inside, 0o777)   # written by the sandbox user
    # sftp-server (and so scp, which speaks SFTP) refuses to run for a uid that
    # has no passwd entry ("No user found for uid 1500"): use one that has.
    nobody = 65534
    with ssh_sandbox(world, policy(world, run_as=str(nobody))) as (h, sock):
        opts = ssh_opts(sock)
        for mode, flags in (("scp-sftp", []), ("scp-legacy", ["-O"])):
            up = "%s/%s.bin" % (inside, mode)
            back = tmp_path / ("%s-back.bin" % mode)
            r = subprocess.run(["scp", "-q", *flags, *opts, str(src), "sandbox:" + up],
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r
            assert os.stat(up).st_uid == nobody, "not written by the sandbox user"
            r = subprocess.run(["scp", "-q", *flags, *opts, "sandbox:" + up, str(back)],
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r
            assert _sha256(back) == want, mode
        batch = tmp_path / "batch"
        batch.write_text("put %s %s/sftp.bin\nget %s/sftp.bin %s/sftp-back.bin\n"
                         % (src, inside, inside, tmp_path))
        r = subprocess.run(["sftp", "-q", *opts, "-b", str(batch), "sandbox"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r
        assert _sha256(tmp_path / "sftp-back.bin") == want
        r = ssh(sock, "sha256sum %s/sftp.bin" % inside)
        assert r.stdout.split()[0] == want, r


# ---- forwarding -------------------------------------------------------------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_local_forward_loopback_only(ssh_ready):
    world = ssh_ready
    port = 18000 + secrets.randbelow(1000)
    server = [W.PYTHON, "-u", "-m", "http.server", "-b", "127.0.0.1", str(port)]
    with ssh_sandbox(world, policy(world, [("plain.allowed.test", 80)]), argv=server,
                     ready="Serving HTTP") as (h, sock):
        local, bad = _free_port(), _free_port()
        fwd = subprocess.Popen(ssh_argv(sock, extra=[
            "-N", "-L", "127.0.0.1:%d:localhost:%d" % (local, port),
            "-L", "127.0.0.1:%d:198.51.100.11:80" % bad]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        mark = world.http_mark()
        try:
            assert wait_for(lambda: _fetch(local).startswith(b"HTTP/1.0 200"), 15)
            # the same client, a forward to a world address: no response, nothing sent
            assert _fetch(bad) == b""
        finally:
            # SIGKILL: OpenSSH 9.2 can miss a SIGTERM that lands just before its poll()
            fwd.kill()
            fwd.wait(10)
        # stdio forwarding to the same server, by address
        r = ssh(sock, extra=["-W", "127.0.0.1:%d" % port], input="GET / HTTP/1.0\r\n\r\n")
        assert r.stdout.startswith("HTTP/1.0 200"), r
        # anything not loopback is refused before a connection is made
        for dest in ("198.51.100.11:80", "plain.allowed.test:80", "10.200.0.1:3128",
                     "[2001:db8::1]:80"):
            r = ssh(sock, extra=["-W", dest], input="GET / HTTP/1.0\r\n\r\n")
            assert r.returncode == 255 and r.stdout == "", (dest, r)
        assert world.http_requests(mark) == []
        log = h.stderr()
        for dest in ("198.51.100.11:80", "plain.allowed.test:80", "10.200.0.1:3128",
                     "[2001:db8::1]:80"):
            assert "forward to %s refused" % dest.replace("[", "").replace("]", "") in log \
                or "forward to %s refused" % dest in log, log


def _fetch(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return c.recv(100)
    except OSError:
        return b""


# ---- many sessions, cleanup, lifecycle --------------------------------------------------

def test_twenty_concurrent_sessions_leave_nothing(ssh_ready):
    world = ssh_ready
    with ssh_sandbox(world, policy(world)) as (h, sock):
        before = set(h.pids())
        procs = [subprocess.Popen(ssh_argv(sock, "true"), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(20)]
        results = [(p.wait(60), p.stderr.read()) for p in procs]
        for p in procs:
            p.stdout.close()
            p.stderr.close()
        assert [rc for rc, _ in results] == [0] * 20, results
        assert wait_for(lambda: set(h.pids()) <= before, SESSION_GRACE), \
            (sorted(set(h.pids()) - before), before)


def test_dropped_client_kills_its_session(ssh_ready):
    world = ssh_ready
    with ssh_sandbox(world, policy(world)) as (h, sock):
        before = set(h.pids())
        client = subprocess.Popen(ssh_argv(sock, "sleep 300 & sleep 301"),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        assert wait_for(lambda: len(set(h.pids()) - before) >= 2, 15), "session never ran"
        client.kill()
        client.wait(10)
        assert wait_for(lambda: set(h.pids()) <= before, SESSION_GRACE), \
            "session processes outlived their client: %s" % sorted(set(h.pids()) - before)


def test_supervisor_stop_ends_sessions_with_exit_status(ssh_ready):
    world = ssh_ready
    sock = new_socket_path(world)
    h = world.start_sandbox(policy(world), WAIT_WORKLOAD,
                            extra_args=["--ssh-socket-path", sock])
    try:
        assert h.wait_for_stdout("ready", timeout=20), h.stderr()
        assert wait_for(lambda: os.path.exists(sock), 10), h.stderr()
        before = set(h.pids())
        client = subprocess.Popen(ssh_argv(sock, "sleep 300"), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert wait_for(lambda: set(h.pids()) - before, 15), "session never ran"
        h.signal(signal.SIGTERM)
        rc = client.wait(20)
        err = client.stderr.read()
        client.stderr.close()
        # the session was hung up (SIGHUP) and its status sent before the socket closed
        assert rc == 128 + signal.SIGHUP, (rc, err)
        r = h.wait(20)
        assert not r.timed_out, str(r)
        assert not os.path.exists(sock), "socket left behind"
    finally:
        h.kill_all()


def test_socket_unreachable_from_the_sandbox(ssh_ready):
    world = ssh_ready
    probe = ("import socket,sys\n"
             "s=socket.socket(socket.AF_UNIX)\n"
             "try:\n s.connect(sys.argv[1]); print('CONNECTED')\n"
             "except OSError as e: print('REFUSED', e.errno)\n")
    sock = new_socket_path(world)
    with ssh_sandbox(world, policy(world), sock=sock) as (h, _):
        r = ssh(sock, shlex.join([W.PYTHON, "-c", probe, sock]))
        assert r.returncode == 0, r
        assert r.stdout.startswith("REFUSED"), r


def test_abstract_socket_is_invisible_to_the_sandbox(ssh_ready):
    """An abstract socket lives in the supervisor's network namespace: the container
    reaches it, the sandbox (its own netns) cannot."""
    world = ssh_ready
    name = "@osw-ssh-" + secrets.token_hex(4)
    probe = ("import socket,time\n"
             "time.sleep(0.5)\n"
             "s=socket.socket(socket.AF_UNIX)\n"
             "try:\n s.connect('\\0%s'); print('CONNECTED', flush=True)\n"
             "except OSError as e: print('REFUSED', e.errno, flush=True)\n"
             "print('ready', flush=True)\n"
             "time.sleep(600)\n") % name[1:]
    h = world.start_sandbox(policy(world), [W.PYTHON, "-c", probe],
                            extra_args=["--ssh-socket-path", name])
    try:
        assert h.wait_for_stdout("ready", timeout=20), h.stderr()
        assert "REFUSED" in h.stdout(), h.stdout()
        banner = ("import socket\n"
                  "s=socket.socket(socket.AF_UNIX); s.settimeout(10)\n"
                  "s.connect('\\0%s'); print(s.recv(64).decode(errors='replace'))\n") % name[1:]
        r = world.run_in_container([W.PYTHON, "-c", banner], timeout=20)
        assert r.stdout.startswith("SSH-2.0-"), r
    finally:
        h.signal(signal.SIGTERM)
        r = h.wait(15)
        assert not r.timed_out, str(r)


def test_socket_path_from_environment(ssh_ready):
    world = ssh_ready
    sock = new_socket_path(world)
    with ssh_sandbox(world, policy(world), env={"OPENSHELL_SSH_SOCKET_PATH": sock},
                     sock=sock) as (h, _):
        r = ssh(sock, "echo via-env")
        assert r.stdout == "via-env\n", r


def test_authorized_keys_are_enforced(ssh_ready, tmp_path):
    world = ssh_ready
    key = tmp_path / "id"
    other = tmp_path / "other"
    for k in (key, other):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k)],
                       check=True, timeout=30)
    with ssh_sandbox(world, policy(world),
                     extra_args=["--ssh-authorized-keys", str(key) + ".pub"]) as (h, sock):
        r = ssh(sock, "echo keyed", extra=["-o", "IdentitiesOnly=yes", "-i", str(key)])
        assert r.returncode == 0 and r.stdout == "keyed\n", r
        r = ssh(sock, "echo no", extra=["-o", "IdentitiesOnly=yes", "-i", str(other)])
        assert r.returncode == 255, r
        r = ssh(sock, "echo no", extra=["-o", "PubkeyAuthentication=no"])
        assert r.returncode == 255, r


def test_connect_subcommand(ssh_ready):
    world = ssh_ready
    with ssh_sandbox(world, policy(world)) as (h, sock):
        r = subprocess.run([world.sandbox_bin, "connect", "--socket", sock, "--", "uname", "-a"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r
        assert r.stdout.startswith("Linux ") and os.uname().release in r.stdout, r
        r = subprocess.run([world.sandbox_bin, "connect", "--socket", sock, "--", "id", "-u"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert r.stdout == "1500\n", r


# Every descriptor a session child holds besides 0..2, with its target.
SESSION_FDS = ("python3 -c 'import os,json; print(json.dumps({fd: os.readlink(\"/proc/self/fd/%d\" % fd) "
               "for fd in range(3, 4096) if os.path.exists(\"/proc/self/fd/%d\" % fd)}))'")


def test_session_children_inherit_no_supervisor_descriptors(ssh_ready):
    """Sessions are forked from relay threads while other connections, their ptys and
    pipes, the listening socket and the proxy's sockets are open: none may leak."""
    world = ssh_ready
    with ssh_sandbox(world, policy(world)) as (h, sock):
        # a second, live connection with a pty while the probe runs
        held = subprocess.Popen(ssh_argv(sock, "sleep 30", extra=["-tt"]),
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            for extra in ((), ("-tt",)):
                r = ssh(sock, SESSION_FDS, extra=extra)
                assert r.returncode == 0, r
                line = [x for x in r.stdout.splitlines() if x.startswith("{")][-1]
                fds = json.loads(line)
                # the probe opens nothing itself: any fd above 2 was inherited
                assert fds == {}, r
        finally:
            held.kill()
            held.wait(5)
