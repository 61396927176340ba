"""The integration test world for openshell-sandbox (Python 3.11 stdlib only).

A World is two network namespaces joined by a veth pair:

    osw-<id> ("world")                       osc-<id> ("container")
    wv-<id>: 198.51.100.1/24 + servers  <->  cv-<id>: 198.51.100.2/24
             203.0.113.1/24  + servers            route 203.0.113.0/24 via 198.51.100.1
             2001:db8::1/64                       2001:db8::2/64, lo up, NO default route
             route 10.200.0.0/16 via .2           ip_forward=1 (so an unfenced sandbox
                                                  WOULD reach the world: fence tests bite)

The supervisor is started inside the container namespace with its own mount
namespace in which /etc/hosts and /etc/resolv.conf are bind-mounted from the
world directory (see CONTAINER_SCRIPT). Nothing is routed anywhere but between
these two namespaces, so no packet can leave them.

See tests/README.md for the fixture API; scripts/demo.py reuses this module.
"""

import atexit
import ctypes
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# OSWORLD_SANDBOX_BIN runs the suite against another build (ASan, installed copy).
SANDBOX_BIN = Path(os.environ.get("OSWORLD_SANDBOX_BIN") or REPO / "build" / "openshell-sandbox")
PYTHON = "/usr/bin/python3"
IP = "/usr/sbin/ip"
NFT = "/usr/sbin/nft"
UNSHARE = "/usr/bin/unshare"
NSENTER = "/usr/bin/nsenter"
OPENSSL = "/usr/bin/openssl"
SYSCTL = "/usr/sbin/sysctl"
PING = "/usr/bin/ping"
REQUIRED_TOOLS = (IP, NFT, UNSHARE, NSENTER, OPENSSL, SYSCTL, "/usr/bin/curl")

NETNS_DIR = Path("/run/netns")
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MARKER_VAR = "OSWORLD_RUN"          # set on every supervisor we start; found in /proc/*/environ

# ---- addresses and names --------------------------------------------------------------
WORLD_GW = "198.51.100.1"
CONTAINER_IP = "198.51.100.2"
FAR_GW = "203.0.113.1"
WORLD_V6 = "2001:db8::1"
CONTAINER_V6 = "2001:db8::2"
DNS_IP = "198.51.100.53"
DNS_ZONE = "dnsonly.test"            # names under it are NOT in /etc/hosts; the world DNS answers
DNS_ANSWER_IP = "198.51.100.20"      # every A query under DNS_ZONE gets this
WORLD_RANGES = ("198.51.100.0/24", "203.0.113.0/24")
SANDBOX_RANGE = "10.200.0.0/16"      # where the supervisor puts its inner veth pair

HTTP_PORTS = (80, 8080)
HTTPS_PORTS = (443, 8443)
ECHO_PORT = 7
UDP_PORT = 9999

# name -> address(es) in the sandbox's /etc/hosts. First name of an address is its
# server name ("hello from <name>").
HOSTS = {
    "api.allowed.test": "198.51.100.10",
    "plain.allowed.test": "198.51.100.11",
    "a.wild.test": "198.51.100.12",
    "b.wild.test": "198.51.100.13",
    "wild.test": "198.51.100.14",
    "deep.a.wild.test": "198.51.100.18",
    "denied.test": "198.51.100.15",
    "other.allowed.test": "198.51.100.16",
    "far.allowed.test": "203.0.113.10",
    "loop.allowed.test": "127.0.0.1",
    "private.allowed.test": "10.0.0.5",
    "meta.allowed.test": "169.254.169.254",
    "linklocal.allowed.test": "169.254.10.10",
    "mixed.allowed.test": ("198.51.100.17", "127.0.0.1"),
    "git.allowed.test": "198.51.100.19",  # also serves the smart-HTTP git repo /repo.git
}
EXTRA_SERVER_NAMES = {
    DNS_ANSWER_IP: DNS_ZONE,
    DNS_IP: "ns.world.test",
    WORLD_GW: "gw.world.test",
    FAR_GW: "gw.far.test",
    WORLD_V6: "v6.world.test",
}
# Certificate SANs beyond the names above (wildcards for any future names).
EXTRA_SANS = ("*.allowed.test", "*.wild.test", "*." + DNS_ZONE, DNS_ZONE, "*.denied.test")

# Runs as: sh -c CONTAINER_SCRIPT sh HOSTS RESOLV NETNS_PATH CMD...
# (unshare gives a private mount namespace; the binds are invisible to the machine.)
CONTAINER_SCRIPT = ('set -e; mount --bind "$1" /etc/hosts; mount --bind "$2" /etc/resolv.conf; '
                    'n="$3"; shift 3; exec ' + NSENTER + ' --net="$n" -- "$@"')

# The raw-socket proxy probe run inside the sandbox by sandbox_connect()/sandbox_forward().
# argv: connect HOST PORT | forward METHOD URL.  Prints one JSON object.
PROBE_SCRIPT = r'''
import json, os, socket, sys, time, urllib.parse
mode = sys.argv[1]
proxy = os.environ.get("HTTPS_PROXY" if mode == "connect" else "HTTP_PROXY", "")
out = {"proxy": proxy, "status": None, "reason": "", "headers": {}, "body": "", "error": None}
t0 = time.monotonic()
try:
    u = urllib.parse.urlsplit(proxy)
    s = socket.create_connection((u.hostname, u.port), timeout=20)
    if mode == "connect":
        target = "%s:%s" % (sys.argv[2], sys.argv[3])
        req = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)
    else:
        host = urllib.parse.urlsplit(sys.argv[3]).netloc
        req = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (sys.argv[2], sys.argv[3], host)
    s.sendall(req.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if lines and lines[0].startswith("HTTP/"):
        parts = lines[0].split(" ", 2)
        out["status"] = int(parts[1])
        out["reason"] = parts[2] if len(parts) > 2 else ""
        for l in lines[1:]:
            k, _, v = l.partition(":")
            out["headers"][k.strip().lower()] = v.strip()
    if out["status"] is not None and not (mode == "connect" and out["status"] == 200):
        want = int(out["headers"].get("content-length", "-1") or "-1")
        while want < 0 or len(body) < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    out["body"] = body.decode("utf-8", "replace")
    s.close()
except Exception as e:
    out["error"] = "%s: %s" % (type(e).__name__, e)
out["elapsed"] = time.monotonic() - t0
print(json.dumps(out))
'''


class WorldError(RuntimeError):
    pass


def skip_or_fail(msg):
    """pytest.skip under pytest, WorldError elsewhere (the demo)."""
    if "pytest" in sys.modules:
        import pytest
        pytest.skip(msg)
    raise WorldError(msg)


def require_ping():
    if not os.access(PING, os.X_OK):
        skip_or_fail("ping is not installed (iputils-ping; run scripts/deps.sh)")


def run(argv, check=True, timeout=30, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise WorldError("%s failed (rc=%d): %s" % (" ".join(map(str, argv)), p.returncode,
                                                   p.stderr.strip()))
    return p


def environment_problem():
    """None if the world can be built here, else why not."""
    if os.geteuid() != 0:
        return "integration tests need root (network namespaces, mounts)"
    missing = [t for t in REQUIRED_TOOLS if not os.access(t, os.X_OK)]
    if missing:
        return "missing tools: %s (run scripts/deps.sh)" % ", ".join(missing)
    return None


def _set_pdeathsig():
    # Runs in the child before exec: die with the test process, never outlive it.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _supervisor_setup(terminal):
    """preexec_fn of a supervisor run, which Popen starts in a session of its own: it dies
    with the test and has `terminal` (a pty slave path) as its controlling terminal, or
    none at all (as in a container started without -t), whatever terminal the tests run on."""
    def setup():
        _set_pdeathsig()
        if terminal is not None:
            fd = os.open(terminal, os.O_RDWR | os.O_NOCTTY)
            fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
            os.close(fd)
    return setup


def _pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _pid_environ_has(pid, needle):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return needle in f.read().split(b"\0")
    except OSError:
        return False


def _ns_inode(pid, kind):
    try:
        return os.readlink("/proc/%d/ns/%s" % (pid, kind))
    except OSError:
        return None


def _start_time(pid):
    """Start time of pid in clock ticks (field 22 of /proc/pid/stat), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _is_mountpoint(path):
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == str(path) for line in f)
    except OSError:
        return False


def _read_jsonl(path, since=0):
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines[since:] if line.strip()]


def _count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def _parse_audit(text):
    parsed = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            parsed.append(json.loads(line))
        except ValueError:
            parsed.append({"_unparsable": line})
    return parsed


@dataclass
class Result:
    """What one supervisor run did."""
    returncode: int
    stdout: str
    stderr: str
    audit_lines: list          # parsed JSON objects ({"_unparsable": line} if a line is not JSON)
    audit_raw: str
    duration: float            # seconds, wall clock around the supervisor
    argv: list = field(default_factory=list)
    run_dir: str = ""
    timed_out: bool = False

    def json_stdout(self):
        """The last non-empty stdout line parsed as JSON."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        if not lines:
            raise AssertionError("no stdout to parse as JSON\n" + str(self))
        return json.loads(lines[-1])

    def __str__(self):
        return ("--- sandbox run (rc=%s, %.2fs%s) in %s\nargv: %s\n--- stdout:\n%s\n--- stderr:\n%s\n"
                "--- audit:\n%s" % (self.returncode, self.duration,
                                    ", TIMED OUT" if self.timed_out else "", self.run_dir,
                                    " ".join(map(str, self.argv)), self.stdout[-4000:],
                                    self.stderr[-4000:], self.audit_raw[-4000:]))


@dataclass
class ProbeReply:
    """A proxy reply seen by the raw-socket probe running inside the sandbox."""
    status: int | None         # HTTP status from the proxy (None: no HTTP response at all)
    reason: str
    headers: dict              # lower-case names
    body: str
    json: dict | None          # body parsed as JSON, if it is JSON
    error: str | None          # socket error in the probe, if any
    elapsed: float
    result: Result


class SandboxHandle:
    """A supervisor running in the background (start_sandbox)."""

    def __init__(self, world, proc, argv, run_dir, marker, t0):
        self.world = world
        self.proc = proc
        self.pid = proc.pid
        self.argv = argv
        self.run_dir = Path(run_dir)
        self.marker = marker
        self._t0 = t0
        self._result = None
        self._mnt_members = None
        self.mnt_ns = self._learn_mnt_ns()

    def _learn_mnt_ns(self):
        mine = _ns_inode(os.getpid(), "mnt")
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and self.proc.poll() is None:
            ns = _ns_inode(self.pid, "mnt")
            if ns and ns != mine:
                return ns
            time.sleep(0.01)
        return None

    def stdout(self):
        return (self.run_dir / "stdout").read_text(errors="replace")

    def stderr(self):
        return (self.run_dir / "stderr").read_text(errors="replace")

    def audit_raw(self):
        try:
            return (self.run_dir / "audit.jsonl").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def audit_lines(self):
        return _parse_audit(self.audit_raw())

    def wait_for_stdout(self, text, timeout=15):
        """True once `text` appears on the workload's stdout (False on timeout or exit)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stdout():
                return True
            if self.proc.poll() is not None:
                return text in self.stdout()
            time.sleep(0.05)
        return False

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def pids(self):
        """Live processes of this run: the supervisor and everything it started."""
        mine = {self.pid} if self.proc.poll() is None else set()  # pids get reused
        return self.world._run_pids(self.marker, mine, {self.mnt_ns_if_ours()} - {None})

    def mnt_ns_if_ours(self):
        """The run's mount namespace inode, while it provably still is this run's: a
        freed namespace's inode number is reused, e.g. by a concurrent test session's
        run, which must never be mistaken for ours. So after the supervisor exits, the
        namespace counts only while a process that was in it at that point lives on."""
        if self.mnt_ns is None:
            return None
        if self.proc.poll() is None:
            return self.mnt_ns
        if self._mnt_members is None:
            self._mnt_members = {p: _start_time(p) for p in _all_pids()
                                 if _ns_inode(p, "mnt") == self.mnt_ns}
        for pid, started in self._mnt_members.items():
            if started is not None and _start_time(pid) == started:
                return self.mnt_ns
        return None

    def workload_pids(self):
        return [p for p in self.pids() if p != self.pid]

    def sandbox_netns(self):
        """'/proc/<pid>/ns/net' of a workload process inside the sandbox's own network
        namespace (None if there is none): lets a test act as root inside it."""
        sup = _ns_inode(self.pid, "net")
        for pid in self.workload_pids():
            ns = _ns_inode(pid, "net")
            if ns and ns != sup:
                return "/proc/%d/ns/net" % pid
        return None

    def workload_environ(self):
        """Environment of a workload process (dict), {} if none is found."""
        for pid in self.workload_pids():
            try:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    items = [kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv]
                return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in items}
            except OSError:
                continue
        return {}

    def kill_all(self):
        """SIGKILL every live process of this run (all of them are ours)."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def wait(self, timeout=30):
        """Wait for the supervisor to exit; on timeout kill the run. Returns a Result."""
        if self._result is not None:
            return self._result
        timed_out = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill_all()
        self.mnt_ns_if_ours()  # snapshot its members now, before the inode can be reused
        self._result = Result(
            returncode=self.proc.returncode, stdout=self.stdout(), stderr=self.stderr(),
            audit_lines=self.audit_lines(), audit_raw=self.audit_raw(),
            duration=time.monotonic() - self._t0, argv=self.argv, run_dir=str(self.run_dir),
            timed_out=timed_out)
        return self._result


class World:
    """Build with World.create(); tear down with close() (also registered atexit)."""

    def __init__(self):
        self.id = secrets.token_hex(3)
        self.world_ns = "osw-" + self.id
        self.container_ns = "osc-" + self.id
        self.world_if = "wv-" + self.id
        self.container_if = "cv-" + self.id
        self.dir = Path("/tmp") / ("osw-" + self.id)
        self.hosts = dict(HOSTS)
        self.ca_cert = str(self.dir / "ca" / "ca.pem")
        self.hosts_file = str(self.dir / "hosts")
        self.resolv_conf = str(self.dir / "resolv.conf")
        self.dns_log = str(self.dir / "dns.jsonl")
        self.udp_log = str(self.dir / "udp.jsonl")
        self.http_log = str(self.dir / "http.jsonl")
        self.icmp_log = str(self.dir / "icmp.jsonl")
        self.sandbox_bin = str(SANDBOX_BIN)
        self.runs_started = 0
        self._servers = None
        self._handles = []
        self._created_ns = []
        self._baseline_netns = set()
        self._closed = False

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def create(cls):
        problem = environment_problem()
        if problem:
            raise WorldError(problem)
        sweep_stale_worlds()
        w = cls()
        atexit.register(w.close)
        try:
            w._build()
        except BaseException:
            w.close()
            raise
        return w

    def _build(self):
        self.dir.mkdir(mode=0o755)
        os.chmod(self.dir, 0o755)  # the sandboxed workload (uid 1500) reads the CA from here
        (self.dir / "owner.pid").write_text(str(os.getpid()))
        (self.dir / "runs").mkdir(mode=0o755)
        self._baseline_netns = self._named_netns()
        self._write_hosts_and_resolv()
        self._make_certs()
        self._make_namespaces()
        self._start_servers()

    def _write_hosts_and_resolv(self):
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        for name, addrs in self.hosts.items():
            for a in ([addrs] if isinstance(addrs, str) else addrs):
                lines.append("%s\t%s" % (a, name))
        Path(self.hosts_file).write_text("\n".join(lines) + "\n")
        Path(self.resolv_conf).write_text("nameserver %s\noptions timeout:2 attempts:2\n" % DNS_IP)
        for p in (self.hosts_file, self.resolv_conf):
            os.chmod(p, 0o644)

    def server_names(self):
        """address -> the name its servers announce."""
        names = {}
        for name, addrs in self.hosts.items():
            for a in ([addrs] if isinstance(addrs, str) else addrs):
                names.setdefault(a, name)
        names.update({k: v for k, v in EXTRA_SERVER_NAMES.items() if k not in names})
        return names

    def server_addresses(self):
        """Addresses served in the world namespace (world-range IPv4 ones)."""
        out = []
        for a in self.server_names():
            if a.startswith(("198.51.100.", "203.0.113.")) and a not in (WORLD_GW, FAR_GW):
                out.append(a)
        return sorted(set(out))

    def ip(self, name):
        addrs = self.hosts[name]
        return addrs if isinstance(addrs, str) else addrs[0]

    def _make_certs(self):
        ca = self.dir / "ca"
        ca.mkdir(mode=0o755)
        sans = sorted(set(list(self.hosts) + list(EXTRA_SANS)))
        ips = [a for a in self.server_names() if ":" not in a] + [WORLD_V6]
        san = ",".join(["DNS:" + n for n in sans] + ["IP:" + a for a in ips])
        key_args = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run([OPENSSL, "req", "-x509", *key_args, "-keyout", str(ca / "ca.key"),
             "-out", str(ca / "ca.pem"), "-days", "2", "-subj", "/CN=osworld test CA " + self.id,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        run([OPENSSL, "req", "-new", *key_args, "-keyout", str(ca / "leaf.key"),
             "-out", str(ca / "leaf.csr"), "-subj", "/CN=api.allowed.test"])
        (ca / "leaf.ext").write_text(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid\nsubjectAltName=%s\n" % san)
        run([OPENSSL, "x509", "-req", "-in", str(ca / "leaf.csr"), "-CA", str(ca / "ca.pem"),
             "-CAkey", str(ca / "ca.key"), "-CAcreateserial", "-days", "2",
             "-extfile", str(ca / "leaf.ext"), "-out", str(ca / "leaf.pem")])
        os.chmod(ca / "ca.pem", 0o644)
        self.leaf_cert = str(ca / "leaf.pem")
        self.leaf_key = str(ca / "leaf.key")

    def _ip(self, ns, *args):
        return run([IP, "-n", ns, *args])

    def _make_namespaces(self):
        for ns in (self.world_ns, self.container_ns):
            run([IP, "netns", "add", ns])
            self._created_ns.append(ns)
        run([IP, "link", "add", "name", self.world_if, "netns", self.world_ns, "type", "veth",
             "peer", "name", self.container_if, "netns", self.container_ns])
        w, c = self.world_ns, self.container_ns
        for ns in (w, c):
            self._ip(ns, "link", "set", "lo", "up")
        self._ip(w, "addr", "add", WORLD_GW + "/24", "dev", self.world_if)
        self._ip(w, "addr", "add", FAR_GW + "/24", "dev", self.world_if)
        for a in self.server_addresses():
            self._ip(w, "addr", "add", a + "/32", "dev", self.world_if)
        self._ip(w, "-6", "addr", "add", WORLD_V6 + "/64", "dev", self.world_if, "nodad")
        self._ip(w, "link", "set", self.world_if, "up")
        self._ip(w, "route", "add", SANDBOX_RANGE, "via", CONTAINER_IP)
        self._ip(c, "addr", "add", CONTAINER_IP + "/24", "dev", self.container_if)
        self._ip(c, "-6", "addr", "add", CONTAINER_V6 + "/64", "dev", self.container_if, "nodad")
        self._ip(c, "link", "set", self.container_if, "up")
        self._ip(c, "route", "add", "203.0.113.0/24", "via", WORLD_GW)
        # Forwarding in the container: without the supervisor's fence, a sandbox's direct
        # dial would really reach the world, so the fence tests fail when the fence is missing.
        run([NSENTER, "--net=" + self.netns_path(c), SYSCTL, "-q", "-w",
             "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])

    def netns_path(self, ns):
        return str(NETNS_DIR / ns)

    def _start_servers(self):
        cfg = {
            "dir": str(self.dir), "names_by_ip": self.server_names(),
            "cert": self.leaf_cert, "key": self.leaf_key,
            "http_ports": list(HTTP_PORTS), "https_ports": list(HTTPS_PORTS),
            "echo_port": ECHO_PORT, "udp_port": UDP_PORT, "dns_ip": DNS_IP,
            "dns_zone": DNS_ZONE, "dns_answer_ip": DNS_ANSWER_IP,
        }
        cfg_path = self.dir / "servers.json"
        cfg_path.write_text(json.dumps(cfg, indent=1))
        for log in (self.dns_log, self.udp_log, self.http_log, self.icmp_log):
            Path(log).touch()
        errf = open(self.dir / "servers.stderr", "w")
        self._servers = subprocess.Popen(
            [NSENTER, "--net=" + self.netns_path(self.world_ns), PYTHON,
             str(Path(__file__).with_name("world_servers.py")), str(cfg_path)],
            stdout=subprocess.PIPE, stderr=errf, text=True, preexec_fn=_set_pdeathsig)
        errf.close()
        line = self._servers.stdout.readline()  # READY or EOF on failure
        if line.strip() != "READY":
            raise WorldError("world servers did not start: %s" %
                             (self.dir / "servers.stderr").read_text()[-2000:])

    # ---- running things in the container ------------------------------------------------
    def container_argv(self, argv, netns=None):
        """argv that runs `argv` in the container: its netns (or `netns`, a path), its
        /etc/hosts and resolv.conf."""
        return [UNSHARE, "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                CONTAINER_SCRIPT, "sh", self.hosts_file, self.resolv_conf,
                netns or self.netns_path(self.container_ns), *map(str, argv)]

    def base_env(self, env=None, marker=None):
        e = {"PATH": CLEAN_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
        if marker:
            e[MARKER_VAR] = marker
        e.update(env or {})
        return e

    def run_in_sandbox_netns(self, handle, argv, timeout=30, env=None):
        """Run argv as ROOT inside a running sandbox's network namespace (with the world's
        /etc/hosts): probes the fence independently of the privilege drop."""
        netns = handle.sandbox_netns()
        if netns is None:
            raise WorldError("no process of the sandbox is in its own network namespace")
        return self.run_in_container(argv, timeout, env, netns)

    def run_in_container(self, argv, timeout=30, env=None, netns=None):
        """Run argv directly in the container namespace (or in `netns`, a path), WITHOUT
        the supervisor. For checking the world itself only; never evidence about the product."""
        t0 = time.monotonic()
        full = self.container_argv(argv, netns)
        p = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout, env=self.base_env(env), cwd=str(self.dir))
        return Result(p.returncode, p.stdout, p.stderr, [], "", time.monotonic() - t0, full)

    def require_binary(self):
        if not os.access(self.sandbox_bin, os.X_OK):
            skip_or_fail("%s is not built (run `make`)" % self.sandbox_bin)

    def new_run_dir(self):
        self.runs_started += 1
        d = self.dir / "runs" / ("%03d" % self.runs_started)
        d.mkdir(mode=0o755)
        return d

    def start_sandbox(self, policy_yaml, argv, extra_args=(), env=None, audit=True,
                      policy_path=None, netns=None, terminal=None, terminal_stdio=False,
                      wrapper=()):
        """Start the supervisor in the background. policy_yaml None: no --policy-data
        (unless policy_path names an existing file to pass as is). netns: a namespace
        path to run in instead of the container's (sidecar tests). terminal: a pty slave
        path, the controlling terminal of the run (and its stdio with terminal_stdio).
        wrapper: argv in the container that runs the supervisor's argv appended to it."""
        self.require_binary()
        d = self.new_run_dir()
        sup_args = []
        if policy_path is not None:
            sup_args += ["--policy-data", str(policy_path)]
        elif policy_yaml is not None:
            (d / "policy.yaml").write_text(policy_yaml)
            sup_args += ["--policy-data", str(d / "policy.yaml")]
        if audit:
            sup_args += ["--audit-log", str(d / "audit.jsonl")]
        sup_args += list(map(str, extra_args))
        full = self.container_argv([*wrapper, self.sandbox_bin, *sup_args, "--", *argv],
                                   netns)
        marker = "%s-%03d" % (self.id, self.runs_started)
        # The sandbox CA files go into the run dir, never the machine's /etc.
        env = {"OPENSHELL_PROXY_TLS_DIR": str(d / "tls"), **(env or {})}
        (d / "argv.json").write_text(json.dumps(full))
        out = open(d / "stdout", "wb")
        err = open(d / "stderr", "wb")
        stdio = (subprocess.DEVNULL, out, err)
        t0 = time.monotonic()
        try:
            if terminal is not None and terminal_stdio:
                stdio = (os.open(terminal, os.O_RDWR | os.O_NOCTTY),) * 3
            proc = subprocess.Popen(full, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2],
                                    env=self.base_env(env, marker), cwd=str(d),
                                    start_new_session=True,
                                    preexec_fn=_supervisor_setup(terminal))
        finally:
            out.close()
            err.close()
            if stdio[0] != subprocess.DEVNULL:
                os.close(stdio[0])
        h = SandboxHandle(self, proc, full, d, marker, t0)
        self._handles.append(h)
        return h

    def run_sandbox(self, policy_yaml, argv, timeout=30, extra_args=(), env=None, audit=True,
                    policy_path=None, netns=None):
        """Run the supervisor to completion; returns a Result."""
        return self.start_sandbox(policy_yaml, argv, extra_args, env, audit,
                                  policy_path, netns).wait(timeout)

    # ---- probes -------------------------------------------------------------------------
    def probe_argv(self, *args):
        return [PYTHON, "-c", PROBE_SCRIPT, *map(str, args)]

    def _probe(self, policy_yaml, args, timeout, extra_args, env):
        res = self.run_sandbox(policy_yaml, self.probe_argv(*args), timeout=timeout,
                               extra_args=extra_args, env=env)
        try:
            o = res.json_stdout()
        except (AssertionError, ValueError) as e:
            raise AssertionError("probe printed no JSON (%s)\n%s" % (e, res)) from None
        try:
            body_json = json.loads(o["body"]) if o["body"].strip() else None
        except ValueError:
            body_json = None
        return ProbeReply(o["status"], o["reason"], o["headers"], o["body"], body_json,
                          o["error"], o["elapsed"], res)

    def sandbox_connect(self, policy_yaml, host, port, timeout=30, extra_args=(), env=None):
        """CONNECT host:port via $HTTPS_PROXY from inside the sandbox, raw socket."""
        return self._probe(policy_yaml, ["connect", host, port], timeout, extra_args, env)

    def sandbox_forward(self, policy_yaml, url, method="GET", timeout=30, extra_args=(),
                        env=None):
        """An absolute-form request (METHOD http://... HTTP/1.1) via $HTTP_PROXY, raw socket."""
        return self._probe(policy_yaml, ["forward", method, url], timeout, extra_args, env)

    # ---- policies -----------------------------------------------------------------------
    @staticmethod
    def endpoint(host, port, allowed_ips=WORLD_RANGES, **extra):
        ep = {"host": host, "port": port}
        if allowed_ips:
            ep["allowed_ips"] = list(allowed_ips)
        ep.update(extra)
        return ep

    def policy_yaml(self, endpoints, name="world", run_as="1500", binaries=None, extra=""):
        """A policy allowing `endpoints` (dicts, or (host, port) tuples which get
        allowed_ips = the world ranges). `extra` is appended verbatim (top-level YAML)."""
        eps = [e if isinstance(e, dict) else self.endpoint(*e) for e in endpoints]
        lines = ["version: 1"]
        if run_as is not None:
            lines.append("process: {run_as_user: %s, run_as_group: %s}" %
                         (json.dumps(str(run_as)), json.dumps(str(run_as))))
        lines += ["network_policies:", "  %s:" % name]
        if eps:
            lines.append("    endpoints:")
            lines += ["      - " + json.dumps(e) for e in eps]
        else:
            lines.append("    endpoints: []")
        if binaries:
            lines.append("    binaries:")
            lines += ["      - {path: %s}" % json.dumps(b) for b in binaries]
        text = "\n".join(lines) + "\n"
        return text + extra if extra else text

    # ---- world logs ---------------------------------------------------------------------
    def dns_mark(self):
        return _count_lines(self.dns_log)

    def dns_queries(self, since=0):
        """[{"name", "qtype", "peer"}] received by the world DNS server after mark `since`."""
        return _read_jsonl(self.dns_log, since)

    def dns_names(self, since=0):
        return {q["name"] for q in self.dns_queries(since)}

    def udp_mark(self):
        return _count_lines(self.udp_log)

    def udp_datagrams(self, since=0):
        """[{"local_ip", "port", "peer", "data_hex"}] received by the UDP sink."""
        return _read_jsonl(self.udp_log, since)

    def http_mark(self):
        return _count_lines(self.http_log)

    def http_requests(self, since=0):
        """[{"name","local_ip","port","scheme","method","path","host","peer"}] served."""
        return _read_jsonl(self.http_log, since)

    def icmp_mark(self):
        return _count_lines(self.icmp_log)

    def icmp_echoes(self, since=0):
        """[{"src", "dst", "type": "echo-request"}] ICMP echo requests that reached the world."""
        return _read_jsonl(self.icmp_log, since)

    # ---- leftovers ----------------------------------------------------------------------
    def _named_netns(self):
        try:
            return set(os.listdir(NETNS_DIR))
        except FileNotFoundError:
            return set()

    def _run_pids(self, marker, pids=(), mnt_namespaces=()):
        needle = ("%s=%s" % (MARKER_VAR, marker)).encode() if marker else None
        out = []
        for pid in _all_pids():
            if pid == os.getpid() or not _pid_alive(pid):
                continue
            if (pid in pids or (needle and _pid_environ_has(pid, needle))
                    or (mnt_namespaces and _ns_inode(pid, "mnt") in mnt_namespaces)):
                out.append(pid)
        return out

    def _all_run_pids(self):
        prefix = ("%s=%s-" % (MARKER_VAR, self.id)).encode()
        mnts = {h.mnt_ns_if_ours() for h in self._handles} - {None}
        # Only supervisors still running: a finished one's pid may already belong to
        # someone else (pid_max wraps quickly under load; other sessions run too).
        ours = {h.pid for h in self._handles if h.proc.poll() is None}
        out = []
        for pid in _all_pids():
            if pid == os.getpid() or not _pid_alive(pid):
                continue
            hit = pid in ours or (mnts and _ns_inode(pid, "mnt") in mnts)
            if not hit:
                try:
                    with open("/proc/%d/environ" % pid, "rb") as f:
                        hit = any(v.startswith(prefix) for v in f.read().split(b"\0"))
                except OSError:
                    pass
            if hit:
                out.append(pid)
        return out

    def container_links(self):
        p = run([IP, "-n", self.container_ns, "-o", "link"], check=False)
        names = []
        for line in p.stdout.splitlines():
            parts = line.split(":", 2)
            if len(parts) >= 2:
                names.append(parts[1].strip().split("@", 1)[0])
        return names

    def container_nft_tables(self):
        p = run([NSENTER, "--net=" + self.netns_path(self.container_ns), NFT, "list", "tables"],
                check=False)
        return [line.strip() for line in p.stdout.splitlines() if line.strip()]

    def leftovers(self):
        """Everything a supervisor run may have left behind; [] when clean."""
        found = []
        extra_links = [n for n in self.container_links() if n not in ("lo", self.container_if)]
        if extra_links:
            found.append("links in %s: %s" % (self.container_ns, extra_links))
        tables = self.container_nft_tables()
        if tables:
            found.append("nftables tables in %s: %s" % (self.container_ns, tables))
        stale = [n for n in self._named_netns() - self._baseline_netns
                 if not n.startswith(("osw-", "osc-")) and not _is_mountpoint(NETNS_DIR / n)]
        if stale:
            found.append("stale named netns files in %s: %s" % (NETNS_DIR, sorted(stale)))
        pids = self._all_run_pids()
        if pids:
            found.append("live processes: %s" % ", ".join(
                "%d(%s)" % (p, _comm(p)) for p in pids))
        return found

    def wait_no_leftovers(self, timeout=5.0):
        """Poll until leftovers() is empty (kernel cleanup is asynchronous); returns the
        last non-empty list, or []."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.leftovers()
            if not found or time.monotonic() >= deadline:
                return found
            time.sleep(0.1)

    def scrub(self):
        """Remove what leftovers() reports, so one failing test does not fail the next."""
        for pid in self._all_run_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for h in self._handles:
            try:
                h.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for n in self.container_links():
            if n not in ("lo", self.container_if):
                run([IP, "-n", self.container_ns, "link", "del", n], check=False)
        for t in self.container_nft_tables():
            parts = t.split()
            if len(parts) == 3 and parts[0] == "table":
                run([NSENTER, "--net=" + self.netns_path(self.container_ns), NFT, "delete",
                     "table", parts[1], parts[2]], check=False)

    # ---- teardown -----------------------------------------------------------------------
    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self.scrub()
        except Exception:
            pass
        if self._servers is not None and self._servers.poll() is None:
            self._servers.terminate()
            try:
                self._servers.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._servers.kill()
                self._servers.wait(timeout=5)
        for ns in reversed(self._created_ns):
            run([IP, "netns", "del", ns], check=False)
        if os.environ.get("OSWORLD_KEEP_DIR") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def sweep_stale_worlds():
    """Delete namespaces of earlier worlds whose owning process is gone (e.g. a test run
    killed with SIGKILL). Worlds of live processes are never touched."""
    for name in sorted(os.listdir(NETNS_DIR)) if NETNS_DIR.is_dir() else []:
        if not name.startswith(("osw-", "osc-")):
            continue
        wid = name[4:]
        owner = Path("/tmp") / ("osw-" + wid) / "owner.pid"
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            continue  # not provably ours: leave it
        if _pid_alive(pid):
            continue
        run([IP, "netns", "del", name], check=False)
        if not (NETNS_DIR / ("osw-" + wid)).exists() and not (NETNS_DIR / ("osc-" + wid)).exists():
            shutil.rmtree(owner.parent, ignore_errors=True)
