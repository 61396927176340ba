"""Confinement of the workload: Landlock (filesystem_policy, landlock.compatibility,
signal/abstract-socket scoping) and the seccomp profiles (process.seccomp).

Contract with the supervisor (see the landlock/ and seccomp/ headers):
  * filesystem_policy present -> Landlock plan prepared as root, applied in the child
    after the privilege drop; absent -> no Landlock at all (so no scoping either, which
    is the "scoping off" control of the signal test).
  * process.seccomp: baseline | strict | nested | off (default off).
  * The startup audit event carries landlock_describe() under a "landlock" key and
    seccomp_describe() under a "seccomp" key (anywhere in the event).
"""

import ctypes
import json
import os
import shutil
import subprocess
import tempfile

import pytest

AGENT_UID = 1500
PY = "/usr/bin/python3"


def landlock_abi():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    v = libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint(1))
    return int(v) if v > 0 else 0


def policy(fs=None, compat="best_effort", seccomp=None):
    """Policy YAML for uid/gid 1500. fs: (read_only, read_write) lists or None."""
    lines = ["version: 1"]
    if fs is not None:
        ro, rw = fs
        lines.append("filesystem_policy:")
        lines.append("  include_workdir: false")
        lines.append("  read_only: %s" % json.dumps(list(ro)))
        lines.append("  read_write: %s" % json.dumps(list(rw)))
        lines.append("landlock:")
        lines.append("  compatibility: %s" % compat)
    lines.append("process:")
    lines.append('  run_as_user: "%d"' % AGENT_UID)
    lines.append('  run_as_group: "%d"' % AGENT_UID)
    if seccomp is not None:
        lines.append("  seccomp: %s" % seccomp)
    lines.append("network_policies: {}")
    return "\n".join(lines) + "\n"


SYSTEM_RO = ["/usr", "/lib", "/etc"]


@pytest.fixture
def tree():
    """/var/tmp/osll-int-XXXX (outside the /tmp baseline), everything owned by the agent
    uid and mode 0755/0644, so only Landlock can deny what DAC would allow."""
    base = tempfile.mkdtemp(prefix="osll-int-", dir="/var/tmp")
    t = {
        "base": base,
        "ro": os.path.join(base, "ro"),
        "rw": os.path.join(base, "rw"),
        "hidden": os.path.join(base, "hidden"),
    }
    for d in ("ro", "rw", "hidden"):
        os.mkdir(t[d], 0o755)
    os.mkdir(os.path.join(t["rw"], "a"))
    os.mkdir(os.path.join(t["rw"], "b"))
    files = {
        os.path.join(t["ro"], "file.txt"): "read me\n",
        os.path.join(t["hidden"], "secret.txt"): "secret\n",
        os.path.join(t["rw"], "a", "moved.txt"): "move me\n",
    }
    for path, text in files.items():
        with open(path, "w") as f:
            f.write(text)
    for root, dirs, names in os.walk(base):
        for n in [root] + [os.path.join(root, x) for x in dirs + names]:
            os.chown(n, AGENT_UID, AGENT_UID)
    yield t
    shutil.rmtree(base, ignore_errors=True)


# Runs inside the sandbox: tries each operation, prints {name: errno or 0} as JSON.
FS_PROBE = r"""
import errno, json, os, sys
base, ro, rw, hidden = sys.argv[1:5]
res = {}
def probe(name, fn):
    try:
        fn()
        res[name] = 0
    except OSError as e:
        res[name] = errno.errorcode.get(e.errno, e.errno)
def write(path):
    with open(path, "w") as f:
        f.write("x")
probe("write_outside", lambda: write(os.path.join(base, "outside.txt")))
probe("read_ro", lambda: open(os.path.join(ro, "file.txt")).read())
probe("write_ro", lambda: write(os.path.join(ro, "file.txt")))
probe("create_in_ro", lambda: write(os.path.join(ro, "new.txt")))
probe("read_hidden", lambda: open(os.path.join(hidden, "secret.txt")).read())
probe("list_hidden", lambda: os.listdir(hidden))
probe("write_rw", lambda: write(os.path.join(rw, "a", "new.txt")))
probe("rename_across_rw", lambda: os.rename(os.path.join(rw, "a", "moved.txt"),
                                            os.path.join(rw, "b", "moved.txt")))
probe("mkdir_rw", lambda: os.mkdir(os.path.join(rw, "b", "sub")))
probe("rename_rw_to_ro", lambda: os.rename(os.path.join(rw, "a", "new.txt"),
                                           os.path.join(ro, "new.txt")))
probe("write_tmp", lambda: write("/tmp/osll-int-%d" % os.getpid()))
probe("read_etc_hostname", lambda: open("/etc/hostname").read())
try:
    os.unlink("/tmp/osll-int-%d" % os.getpid())
except OSError:
    pass
print(json.dumps(res))
"""


def fs_probe(world, t, compat="best_effort", extra_ro=(), seccomp=None):
    pol = policy(fs=(SYSTEM_RO + [t["ro"]] + list(extra_ro), [t["rw"]]), compat=compat,
                 seccomp=seccomp)
    return world.run_sandbox(pol, [PY, "-c", FS_PROBE, t["base"], t["ro"], t["rw"],
                                   t["hidden"]],
                             extra_args=["--workdir", t["rw"]])


def find_key(obj, key):
    """First value stored under `key` anywhere in a JSON-like structure."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            found = find_key(v, key)
            if found is not None:
                return found
    return None


def startup_value(r, key):
    """The startup event's description of `key` ("landlock" / "seccomp")."""
    v = find_key(r.audit_lines, key)
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            pass
    return v


@pytest.fixture(scope="module")
def abi():
    return landlock_abi()


def need_landlock(abi, minimum=1):
    if abi < minimum:
        pytest.skip("kernel Landlock ABI %d < %d" % (abi, minimum))


# ---- Landlock --------------------------------------------------------------------------

def test_landlock_read_only_read_write_and_invisible(world, tree, abi):
    need_landlock(abi, 2)
    r = fs_probe(world, tree)
    assert r.returncode == 0, str(r)
    res = r.json_stdout()
    assert res["write_outside"] == "EACCES", str(r)
    assert res["read_ro"] == 0, str(r)
    assert res["write_ro"] == "EACCES", str(r)
    assert res["create_in_ro"] == "EACCES", str(r)
    assert res["read_hidden"] == "EACCES", str(r)
    assert res["list_hidden"] == "EACCES", str(r)
    assert res["write_rw"] == 0, str(r)
    assert res["rename_across_rw"] == 0, str(r)  # REFER: the uv case
    assert res["mkdir_rw"] == 0, str(r)
    assert res["rename_rw_to_ro"] in ("EACCES", "EXDEV"), str(r)
    assert res["write_tmp"] == 0, str(r)          # baseline /tmp
    assert res["read_etc_hostname"] == 0, str(r)  # /etc listed read-only
    assert os.path.exists(os.path.join(tree["rw"], "b", "moved.txt"))
    assert not os.path.exists(os.path.join(tree["base"], "outside.txt"))
    ll = startup_value(r, "landlock")
    assert isinstance(ll, dict), "no landlock description in the startup event\n" + str(r)
    assert ll.get("enabled") is True and ll.get("enforced") is True, str(r)
    assert ll.get("abi") == abi, str(r)
    paths = {e["path"]: e for e in ll.get("rules", [])}
    assert paths[tree["rw"]]["access"] == "read_write", str(r)
    assert paths[tree["ro"]]["access"] == "read_only", str(r)


def test_landlock_without_it_the_same_probe_succeeds(world, tree):
    """Control: the denials above come from Landlock, not from file permissions."""
    pol = policy(fs=None)
    r = world.run_sandbox(pol, [PY, "-c", FS_PROBE, tree["base"], tree["ro"], tree["rw"],
                                tree["hidden"]], extra_args=["--workdir", tree["rw"]])
    assert r.returncode == 0, str(r)
    res = r.json_stdout()
    for k in ("write_outside", "write_ro", "read_hidden", "rename_rw_to_ro"):
        assert res[k] == 0, str(r)


def test_landlock_hard_requirement_missing_path_fails_start(world, tree, abi):
    need_landlock(abi, 3)
    missing = os.path.join(tree["base"], "no-such-dir")
    marker = "workload-ran-%s" % os.path.basename(tree["base"])
    pol = policy(fs=(SYSTEM_RO + [missing], [tree["rw"]]), compat="hard_requirement")
    r = world.run_sandbox(pol, ["/bin/echo", marker])
    assert r.returncode != 0, str(r)
    assert marker not in r.stdout, str(r)
    text = r.stderr + r.audit_raw
    assert missing in text, str(r)
    assert "hard_requirement" in text, str(r)
    assert "does not exist" in text, str(r)


def test_landlock_best_effort_skips_missing_path(world, tree, abi):
    need_landlock(abi, 1)
    missing = os.path.join(tree["base"], "no-such-dir")
    pol = policy(fs=(SYSTEM_RO + [missing], [tree["rw"]]), compat="best_effort")
    r = world.run_sandbox(pol, ["/bin/echo", "started"])
    assert r.returncode == 0, str(r)
    assert r.stdout.strip() == "started", str(r)
    assert missing in (r.stderr + r.audit_raw), "skipped path not logged\n" + str(r)
    ll = startup_value(r, "landlock")
    if isinstance(ll, dict):
        skipped = {e["path"]: e for e in ll.get("skipped", [])}
        assert missing in skipped, str(r)


# ---- Landlock scoping (ABI >= 6) -----------------------------------------------------------

SIGNAL_PROBE = r"""
import os, sys
try:
    os.kill(int(sys.argv[1]), 0)
    print("SIGNAL-OK")
except PermissionError:
    print("SIGNAL-EPERM")
except ProcessLookupError:
    print("SIGNAL-ESRCH")
"""


@pytest.fixture
def outside_process():
    """A process outside the sandbox running as the agent's uid."""
    p = subprocess.Popen(["/bin/sleep", "60"], user=AGENT_UID, group=AGENT_UID,
                         extra_groups=[], stdin=subprocess.DEVNULL)
    yield p.pid
    p.kill()
    p.wait()


def test_scoping_blocks_signals_to_outside_same_uid(world, tree, abi, outside_process):
    need_landlock(abi, 6)
    pol = policy(fs=(SYSTEM_RO, [tree["rw"]]))
    r = world.run_sandbox(pol, [PY, "-c", SIGNAL_PROBE, str(outside_process)])
    assert r.returncode == 0, str(r)
    assert r.stdout.strip() == "SIGNAL-EPERM", str(r)
    ll = startup_value(r, "landlock")
    if isinstance(ll, dict):
        assert "signal" in ll.get("scoped", []), str(r)


def test_without_landlock_the_same_signal_succeeds(world, outside_process):
    """Control for the scoping test: same uid, no filesystem_policy -> no Landlock."""
    r = world.run_sandbox(policy(fs=None), [PY, "-c", SIGNAL_PROBE, str(outside_process)])
    assert r.returncode == 0, str(r)
    assert r.stdout.strip() == "SIGNAL-OK", str(r)


# ---- seccomp ---------------------------------------------------------------------------------

SECCOMP_PROBE = r"""
import ctypes, errno, json, os, socket, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
res = {}
def err_of(rc):
    return 0 if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())
def sock(name, fam, typ, proto=0):
    try:
        socket.socket(fam, typ, proto).close()
        res[name] = 0
    except OSError as e:
        res[name] = errno.errorcode.get(e.errno, e.errno)
sock("af_packet", 17, socket.SOCK_RAW)
sock("af_vsock", 40, socket.SOCK_STREAM)
sock("netlink_route", 16, socket.SOCK_RAW, 0)
sock("netlink_diag", 16, socket.SOCK_RAW, 4)
res["unshare_user"] = err_of(libc.unshare(0x10000000))
child = os.fork()
if child == 0:
    import time
    time.sleep(5)
    os._exit(0)
res["ptrace_attach"] = err_of(libc.ptrace(ctypes.c_long(16), ctypes.c_long(child), None, None))
os.kill(child, 9)
os.waitpid(child, 0)
res["mount"] = err_of(libc.mount(b"none", b"/nonexistent-osll", b"tmpfs", 0, None))
res["bpf"] = err_of(libc.syscall(ctypes.c_long(321), 0, None, 0))
res["clone3"] = err_of(libc.syscall(ctypes.c_long(435), None, 0))
# TIOCSTI on stdin: the kernel answers ENOTTY for a non-terminal, the filter EPERM
res["tiocsti"] = err_of(libc.ioctl(0, ctypes.c_ulong(0x5412), ctypes.c_char_p(b"x")))
out = []
t = threading.Thread(target=lambda: out.append(1))
t.start(); t.join()
res["thread"] = out == [1]
p = ctypes.c_void_p()
res["getifaddrs"] = err_of(libc.getifaddrs(ctypes.byref(p)))
if p.value:
    libc.freeifaddrs(p)
res["nice"] = os.nice(5)
print(json.dumps(res))
"""

TOOLS = ("node -e 'console.log(6*7)' && git --version && curl --version >/dev/null && "
         "git init -q /tmp/osll-git-$$ && "
         "git -C /tmp/osll-git-$$ -c user.name=a -c user.email=a@b commit -q --allow-empty "
         "-m x && rm -rf /tmp/osll-git-$$ && /usr/bin/python3 -c 'print(\"py-ok\")' && "
         "echo tools-ok")


def seccomp_probe(world, profile):
    return world.run_sandbox(policy(seccomp=profile), [PY, "-c", SECCOMP_PROBE])


@pytest.mark.parametrize("profile", ["baseline", "strict"])
def test_seccomp_denials(world, profile):
    r = seccomp_probe(world, profile)
    assert r.returncode == 0, str(r)
    res = r.json_stdout()
    assert res["af_packet"] == "EPERM", str(r)
    assert res["af_vsock"] == "EPERM", str(r)
    assert res["netlink_route"] == 0, str(r)
    assert res["netlink_diag"] == "EPERM", str(r)
    assert res["unshare_user"] == "EPERM", str(r)
    assert res["ptrace_attach"] == "EPERM", str(r)
    assert res["mount"] == "EPERM", str(r)
    assert res["bpf"] == "EPERM", str(r)
    assert res["clone3"] == "ENOSYS", str(r)
    assert res["tiocsti"] == "EPERM", str(r)
    assert res["thread"] is True, str(r)
    assert res["getifaddrs"] == 0, str(r)
    assert res["nice"] == 5, str(r)
    sc = startup_value(r, "seccomp")
    assert isinstance(sc, dict), "no seccomp description in the startup event\n" + str(r)
    assert sc.get("profile") == profile, str(r)


@pytest.mark.parametrize("profile", ["baseline", "strict", "nested"])
def test_seccomp_toolchains_work(world, profile):
    r = world.run_sandbox(policy(seccomp=profile), ["/bin/sh", "-c", TOOLS], timeout=60)
    assert r.returncode == 0, str(r)
    assert "42" in r.stdout and "py-ok" in r.stdout and "tools-ok" in r.stdout, str(r)


def test_seccomp_off_allows_what_baseline_denies(world):
    """Control: without a profile the probes reach the kernel (EPERM from the kernel
    itself for the privileged ones is possible, but not for unshare or clone3)."""
    r = seccomp_probe(world, None)
    assert r.returncode == 0, str(r)
    res = r.json_stdout()
    assert res["unshare_user"] == 0, str(r)
    assert res["clone3"] != "ENOSYS", str(r)
    assert res["netlink_diag"] == 0, str(r)


def test_seccomp_nested_allows_user_namespaces_not_bpf(world):
    r = world.run_sandbox(policy(seccomp="nested"), [
        "/bin/sh", "-c",
        "unshare -Ur true && echo userns-ok; "
        "/usr/bin/python3 -c 'import ctypes,os; l=ctypes.CDLL(None,use_errno=True); "
        "l.syscall.restype=ctypes.c_long; rc=l.syscall(321,0,None,0); "
        "print(\"bpf\", rc, os.strerror(ctypes.get_errno()))'"])
    assert r.returncode == 0, str(r)
    assert "userns-ok" in r.stdout, str(r)
    assert "bpf -1 Operation not permitted" in r.stdout, str(r)


def test_seccomp_baseline_denies_unshare_cli(world):
    r = world.run_sandbox(policy(seccomp="baseline"),
                          ["/bin/sh", "-c", "unshare -Ur true && echo userns-ok"])
    assert "userns-ok" not in r.stdout, str(r)


def test_seccomp_unknown_profile_is_refused(world):
    r = world.run_sandbox(policy(seccomp="paranoid"), ["/bin/echo", "ran"])
    assert r.returncode != 0, str(r)
    assert "ran" not in r.stdout, str(r)
    assert "seccomp" in r.stderr, str(r)


# ---- nothing applied ------------------------------------------------------------------------

def test_off_and_no_filesystem_policy_applies_nothing(world):
    r = world.run_sandbox(policy(fs=None, seccomp="off"),
                          ["/bin/sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"])
    assert r.returncode == 0, str(r)
    assert "Seccomp:\t0" in r.stdout, str(r)
    ll = startup_value(r, "landlock")
    sc = startup_value(r, "seccomp")
    assert isinstance(ll, dict) and ll.get("enabled") is False, str(r)
    assert isinstance(sc, dict) and sc.get("enabled") is False, str(r)
    assert sc.get("profile") == "off", str(r)


# ---- the fence also holds against connections from outside ---------------------------

# Runs inside the sandbox as the agent: listens on TCP and UDP on every address, prints
# "READY <sandbox address>", answers whatever arrives (the collaborator's side of an
# exfiltration channel), until killed.
INBOUND_LISTENER = r"""
import os, socket, sys, threading, urllib.parse
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.connect(("198.51.100.1", 9))  # no packet: only picks the routed source address
me = probe.getsockname()[0]
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", 7777)); t.listen(8)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 7778))
def udp():
    while True:
        data, peer = u.recvfrom(2048)
        u.sendto(b"udp-leak:" + data, peer)
threading.Thread(target=udp, daemon=True).start()
print("READY", me, flush=True)
while True:
    c, _ = t.accept()
    try:
        c.sendall(b"tcp-leak\n")
    finally:
        c.close()
"""

# Runs in the WORLD namespace (which routes 10.200.0.0/16 to the container, where
# forwarding is on): the collaborator dials the sandbox's listeners directly. The sandbox
# namespace has no link to the container, so nothing arrives; the fence's input chain
# would drop it if anything did.
INBOUND_DIAL = r"""
import json, socket, sys
ip = sys.argv[1]
out = {}
try:
    s = socket.create_connection((ip, 7777), timeout=3)
    s.settimeout(3)
    out["tcp"] = s.recv(64).decode(errors="replace")
except OSError as e:
    out["tcp"] = "error: %s" % e
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(3)
try:
    for _ in range(3):
        u.sendto(b"x", (ip, 7778))
    out["udp"] = u.recvfrom(2048)[0].decode(errors="replace")
except OSError as e:
    out["udp"] = "error: %s" % e
print(json.dumps(out))
"""


def test_fence_refuses_connections_from_outside(world):
    """A collaborator outside must not open a channel to a listener in the sandbox:
    without an ingress rule its replies count as `ct state established` and leave."""
    pol = policy()
    h = world.start_sandbox(pol, [PY, "-c", INBOUND_LISTENER])
    try:
        assert h.wait_for_stdout("READY ", timeout=15), h.stderr()
        line = [x for x in h.stdout().splitlines() if x.startswith("READY ")][-1]
        ip = line.split()[1]
        assert ip.startswith("10.200."), line
        r = world.run_in_container([PY, "-c", INBOUND_DIAL, ip], timeout=30,
                                   netns=world.netns_path(world.world_ns))
        assert r.returncode == 0, str(r)
        got = json.loads(r.stdout.strip().splitlines()[-1])
        assert "leak" not in got["tcp"], str(r)
        assert "leak" not in got["udp"], str(r)
    finally:
        h.kill_all()


# ---- read_write directories created for the agent ------------------------------------------

def test_missing_read_write_dirs_are_created_for_the_agent(world, tree):
    new = os.path.join(tree["base"], "made", "for", "agent")
    r = world.run_sandbox(policy(fs=(SYSTEM_RO, [new])), ["/bin/sh", "-c", "touch %s/x" % new])
    assert r.returncode == 0, str(r)
    st = os.stat(new)
    assert (st.st_uid, st.st_gid) == (AGENT_UID, AGENT_UID)


def test_read_write_creation_never_follows_an_agent_symlink(world, tree):
    """A link the agent left behind must not turn a root-run mkdir/chown into an
    agent-owned directory anywhere else (e.g. under /etc)."""
    target = tempfile.mkdtemp(prefix="osll-target-", dir="/var/tmp")
    try:
        link = os.path.join(tree["base"], "evil")
        os.symlink(target, link)
        os.lchown(link, AGENT_UID, AGENT_UID)
        r = world.run_sandbox(policy(fs=(SYSTEM_RO, [os.path.join(link, "sub")])),
                              ["/bin/true"])
        assert not os.path.exists(os.path.join(target, "sub")), str(r)
        assert os.stat(target).st_uid == 0
    finally:
        shutil.rmtree(target, ignore_errors=True)
