"""The bench world: tests/integration/world.py's closed network plus what `make bench`
needs, all inside namespaces this module creates and removes.

    osb-<id> "client" netns          osc-<id> "container" netns             osw-<id> "world"
    bb-<id> 10.200.254.2/24   <->    bc-<id> 10.200.254.1/24                nginx :18080 (http)
    routes to the world and          openshell-sandbox proxy 10.200.N.1:3128      :18443 (https)
    10.200.0.0/16 via .1             squid 198.51.100.2:13128 (CONNECT)
    (no default route)                     198.51.100.2:13129 (ssl_bump)
                                     tinyproxy 198.51.100.2:13130
                                     mitmdump  198.51.100.2:13131
                                     floor     198.51.100.2:13132 (bench/probes)
                                     floor-tls 198.51.100.2:13133 (bench/probes)
    sandbox netns of openshell-sandbox: floor-sandbox 127.0.0.1:13134, floor-tls-sandbox
    127.0.0.1:13135 (the floors' listeners on openshell's own path; upstream sockets in
    the container netns, as openshell's)
                                     sshd 127.0.0.1:2222 (ssh scenario)

The client namespace stands where a peer proxy's client stands: one veth hop before the
container namespace. The direct path (forwarded by the container namespace, no proxy)
and the peers' paths cross the same two veth hops, so "direct" is the physical limit.
openshell-sandbox's proxy listens only inside its sandbox namespace, so its clients run
there (where an agent runs): the sandbox's loopback, through the fence, then the same
second hop (see client_argv).
The world already routes 10.200.0.0/16 back to the container; the supervisor picks the
first free 10.200.N.0/24 and so skips 10.200.254.0/24.

Every process is started in its own process group and stopped by that group on close();
close() is idempotent and also registered atexit.
"""

import atexit
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import world as W  # noqa: E402

CLIENT_NET = "10.200.254"
CLIENT_IP = CLIENT_NET + ".2"
CLIENT_GW = CLIENT_NET + ".1"
HTTP_PORT = 18080
HTTPS_PORT = 18443
BIG_BYTES = 1 << 30
SMALL_PATH = "/small"
BIG_PATH = "/big"

SQUID_PORT = 13128
SQUID_BUMP_PORT = 13129
TINYPROXY_PORT = 13130
MITM_PORT = 13131
FLOOR_PORT = 13132
FLOOR_TLS_PORT = 13133
# The floors again, listening on the sandbox's loopback beside openshell's proxy.
SANDBOX_FLOOR_IP = "127.0.0.1"
FLOOR_SANDBOX_PORT = 13134
FLOOR_TLS_SANDBOX_PORT = 13135
SSHD_PORT = 2222
PEER_IP = W.CONTAINER_IP

# Hosts used per scenario (one policy rule each; all served by nginx in the world).
HOST_TUNNEL = "plain.allowed.test"   # P1, P4: plain HTTP through a raw tunnel (tls: skip)
HOST_PASS = "other.allowed.test"     # P2: HTTPS passthrough (tls: skip)
HOST_MITM = "api.allowed.test"       # P3: HTTPS, interception when the proxy offers it
HOST_RELOAD = "a.wild.test"          # P5: allowed only by the second policy
HOST_WS = "b.wild.test"              # P8: WebSocket echo of the world's Python server
WS_PORT = 443
WS_PATH = "/ws"
READY_TIMEOUT_S = 30


def sh(argv, check=True, timeout=60, **kw):
    return W.run(list(map(str, argv)), check=check, timeout=timeout, **kw)


def _raise_nofile():
    # Runs in children before exec: the peers and the tunnel client need > 20k fds.
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200000, 200000))
    except (ValueError, OSError):
        pass


def _child_setup():
    W._set_pdeathsig()
    _raise_nofile()


def sweep_stale_client_namespaces():
    """Deletes osb-<id> namespaces of earlier bench runs whose owner is dead."""
    if not W.NETNS_DIR.is_dir():
        return
    for name in sorted(os.listdir(W.NETNS_DIR)):
        if not name.startswith("osb-"):
            continue
        owner = Path("/tmp") / ("osw-" + name[4:]) / "owner.pid"
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            pid = None
        if pid is not None and W._pid_alive(pid):
            continue
        if pid is None and (W.NETNS_DIR / ("osw-" + name[4:])).exists():
            continue  # its world still exists: not provably stale
        sh([W.IP, "netns", "del", name], check=False)


class BenchWorld:
    def __init__(self, log=print):
        self.log = log
        self.world = None
        self.procs = {}          # name -> Popen (each its own process group)
        self.starters = {}       # name -> function that (re)starts it
        self.restarts = []       # what died under us and was restarted
        self.client_ns = None
        self.sandbox = None
        self.proxy_addr = None   # "10.200.N.1:3128"
        self.sandbox_net = None  # "/proc/<workload>/ns/net": where the proxy listens
        self.dir = None
        self._closed = False
        self._made_run_sshd = False

    # ---- construction ----------------------------------------------------------------
    def build(self):
        sweep_stale_client_namespaces()
        self.world = W.World.create()
        atexit.register(self.close)
        self.dir = self.world.dir / "bench"
        self.dir.mkdir(mode=0o755)
        self.client_ns = "osb-" + self.world.id
        self._make_client_ns()
        self._tune_namespaces()
        self._start_nginx()

    def _make_client_ns(self):
        wid = self.world.id
        sh([W.IP, "netns", "add", self.client_ns])
        bb, bc = "bb-" + wid, "bc-" + wid
        sh([W.IP, "link", "add", "name", bb, "netns", self.client_ns, "type", "veth",
            "peer", "name", bc, "netns", self.world.container_ns])
        c, k = self.client_ns, self.world.container_ns
        sh([W.IP, "-n", c, "link", "set", "lo", "up"])
        sh([W.IP, "-n", c, "addr", "add", CLIENT_IP + "/24", "dev", bb])
        sh([W.IP, "-n", c, "link", "set", bb, "up"])
        sh([W.IP, "-n", k, "addr", "add", CLIENT_GW + "/24", "dev", bc])
        sh([W.IP, "-n", k, "link", "set", bc, "up"])
        for net in W.WORLD_RANGES + (W.SANDBOX_RANGE,):
            sh([W.IP, "-n", c, "route", "add", net, "via", CLIENT_GW])

    def _tune_namespaces(self):
        # Namespace-local sysctls: many short connections per second must not run out of
        # ephemeral ports (TIME_WAIT) in any of our namespaces.
        for ns in (self.client_ns, self.world.container_ns, self.world.world_ns):
            sh([W.NSENTER, "--net=" + self.netns_path(ns), W.SYSCTL, "-q", "-w",
                "net.ipv4.ip_local_port_range=10000 65000", "net.ipv4.tcp_tw_reuse=1",
                "net.core.somaxconn=8192", "net.ipv4.tcp_max_syn_backlog=8192"])

    def netns_path(self, ns):
        return str(W.NETNS_DIR / ns)

    # ---- running things ----------------------------------------------------------------
    def client_argv(self, argv):
        """argv run in the client namespace, or, when it talks to openshell-sandbox's
        proxy, inside the sandbox's own network namespace: that is where an agent runs,
        and the proxy listens nowhere else (its address is on the sandbox's loopback).
        Deliberately NOT in a mount namespace of its own (clients look world names up in
        the world's hosts file themselves, and the direct path dials addresses): a test
        world in a concurrent pytest session matches leftover processes by
        mount-namespace inode, and those inodes are recycled, so every short-lived mount
        namespace we created risked a SIGKILL from it."""
        argv = [str(a) for a in argv]
        net = self.netns_path(self.client_ns)
        there = [self.proxy_addr] + ["%s:%d" % (SANDBOX_FLOOR_IP, port) for port in
                                     (FLOOR_SANDBOX_PORT, FLOOR_TLS_SANDBOX_PORT)]
        if self.proxy_addr and self.sandbox_net and any(x in a for a in argv for x in there):
            net = self.sandbox_net
        return [W.NSENTER, "--net=" + net, "--", *argv]

    def container_net_argv(self, argv):
        """argv in the container network namespace, in our own mount namespace."""
        return [W.NSENTER, "--net=" + self.netns_path(self.world.container_ns), "--",
                *map(str, argv)]

    def container_argv(self, argv):
        """argv in the container namespace with the world's /etc/hosts (peers: they
        resolve the world's names like openshell-sandbox does)."""
        return self.world.container_argv(argv)

    def address(self, name):
        return self.world.ip(name)

    def start(self, name, argv, cwd=None, env=None):
        """Starts a long-running peer in its own process group; logs go to the bench dir."""
        out = open(self.dir / (name + ".out"), "wb")
        try:
            p = subprocess.Popen(list(map(str, argv)), stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, cwd=str(cwd or self.dir),
                                 env=env or self.world.base_env(), start_new_session=True,
                                 preexec_fn=_child_setup)
        finally:
            out.close()
        self.procs[name] = p
        return p

    def stop(self, name, sig=signal.SIGTERM):
        p = self.procs.pop(name, None)
        if p is None:
            return
        for s, wait in ((sig, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(p.pid, s)  # the group we created for it, nothing else
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Helpers of the peer (workers, certgen) share its group: make sure it is empty.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait_listening(self, ns, ip, port, name):
        """Polls `ss` in `ns` until ip:port listens (or the peer died / timeout)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        want = "%s:%d" % (ip, port)
        path = ns if ns.startswith("/") else self.netns_path(ns)
        while time.monotonic() < deadline:
            p = sh([W.NSENTER, "--net=" + path, "ss", "-Hltn"], check=False)
            for line in p.stdout.splitlines():
                cols = line.split()
                if len(cols) >= 4 and (cols[3] == want or cols[3] in (
                        "*:%d" % port, "[::]:%d" % port, "0.0.0.0:%d" % port)):
                    return True
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.1)
        log = self.dir / (name + ".out")
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise W.WorldError("%s did not listen on %s: %s" % (name, want, tail))

    # ---- world server: nginx -----------------------------------------------------------
    def _start_nginx(self):
        big = self.dir / "big.bin"
        with open(big, "wb") as f:
            f.truncate(BIG_BYTES)  # sparse: served from the page cache after one read
        os.chmod(big, 0o644)
        conf = self.dir / "nginx.conf"
        body = "hello from nginx\\n"
        server = """
    location = %(big)s { alias %(file)s; default_type application/octet-stream; }
    location = %(small)s { default_type text/plain; return 200 "%(body)s"; }
""" % {"big": BIG_PATH, "file": big, "small": SMALL_PATH, "body": body}
        conf.write_text("""
worker_processes 2;
worker_rlimit_nofile 100000;
daemon off;
master_process on;
pid %(dir)s/nginx.pid;
error_log %(dir)s/nginx.err warn;
events { worker_connections 40000; multi_accept on; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 10000000;
  keepalive_timeout 900s;
  client_header_timeout 900s;
  client_body_temp_path %(dir)s/nginx-tmp;
  proxy_temp_path %(dir)s/nginx-tmp;
  fastcgi_temp_path %(dir)s/nginx-tmp;
  uwsgi_temp_path %(dir)s/nginx-tmp;
  scgi_temp_path %(dir)s/nginx-tmp;
  ssl_certificate %(cert)s;
  ssl_certificate_key %(key)s;
  ssl_protocols TLSv1.2 TLSv1.3;
  server { listen [::]:%(http)d ipv6only=off backlog=8192; %(server)s }
  server { listen [::]:%(https)d ssl ipv6only=off backlog=8192; %(server)s }
}
""" % {"dir": self.dir, "cert": self.world.leaf_cert, "key": self.world.leaf_key,
            "http": HTTP_PORT, "https": HTTPS_PORT, "server": server})
        (self.dir / "nginx-tmp").mkdir(exist_ok=True)
        self.start("nginx", [W.NSENTER, "--net=" + self.netns_path(self.world.world_ns),
                             "/usr/sbin/nginx", "-c", conf, "-e", self.dir / "nginx.err"])
        self.wait_listening(self.world.world_ns, "::", HTTP_PORT, "nginx")
        self.wait_listening(self.world.world_ns, "::", HTTPS_PORT, "nginx")

    # ---- openshell-sandbox ---------------------------------------------------------------
    def policy_yaml(self, extra_hosts=()):
        rng = list(W.WORLD_RANGES)
        eps = [
            {"host": HOST_TUNNEL, "port": HTTP_PORT, "tls": "skip", "allowed_ips": rng},
            {"host": HOST_PASS, "port": HTTPS_PORT, "tls": "skip", "allowed_ips": rng},
            # Interception: an L7 (REST) endpoint is terminated and inspected.
            {"host": HOST_MITM, "port": HTTPS_PORT, "protocol": "rest", "access": "read-only",
             "enforcement": "enforce", "allowed_ips": rng},
            {"host": HOST_WS, "port": WS_PORT, "protocol": "rest", "access": "full",
             "enforcement": "enforce", "allowed_ips": rng},
        ]
        eps += [{"host": h, "port": HTTPS_PORT, "allowed_ips": rng} for h in extra_hosts]
        return self.world.policy_yaml(eps, name="bench")

    def start_sandbox(self, extra_args=(), policy_path=None):
        """The supervisor with an idle workload; learns the proxy address from its env."""
        env = {"SSL_CERT_FILE": self.world.ca_cert}  # if it intercepts: trust the world CA
        pol = None if policy_path else self.policy_yaml()
        h = self.world.start_sandbox(pol, ["/bin/sleep", "1800"], extra_args=extra_args,
                                     env=env, policy_path=policy_path)
        self.sandbox = h
        deadline = time.monotonic() + READY_TIMEOUT_S
        proxy = net = None
        while time.monotonic() < deadline and h.proc.poll() is None:
            proxy = h.workload_environ().get("HTTPS_PROXY") or h.workload_environ().get(
                "https_proxy")
            net = h.sandbox_netns()
            if proxy and net:
                break
            time.sleep(0.05)
        if not proxy or not net:
            h.kill_all()
            raise W.WorldError("the sandbox did not start:\n%s" % h.wait(5))
        self.proxy_addr = proxy.split("://", 1)[-1].rstrip("/")
        self.sandbox_net = net
        ip, _, port = self.proxy_addr.rpartition(":")
        self.wait_listening(net, ip, int(port), "sandbox")
        for name in ("floor-sandbox", "floor-tls-sandbox"):
            if name in self.starters:  # they listen in the previous sandbox's namespace
                self.stop(name)
                self.starters[name]()
        return h

    def stop_sandbox(self):
        h, self.sandbox = self.sandbox, None
        if h is None:
            return None
        h.signal(signal.SIGTERM)
        r = h.wait(timeout=15)
        return r

    # ---- peers ------------------------------------------------------------------------
    def start_squid(self):
        self.starters["squid"] = self.start_squid
        d = self.dir / "squid"
        d.mkdir(exist_ok=True)
        ca_key, ca_pem = d / "ca.key", d / "ca.pem"
        sh([W.OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca_key, "-out", ca_pem,
            "-days", "2", "-subj", "/CN=bench squid CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        db = d / "ssl_db"
        sh(["/usr/lib/squid/security_file_certgen", "-c", "-s", db, "-M", "16MB"])
        conf = d / "squid.conf"
        conf.write_text("""
http_port %(ip)s:%(port)d
http_port %(ip)s:%(bport)d ssl-bump tls-cert=%(ca)s tls-key=%(key)s generate-host-certificates=on dynamic_cert_mem_cache_size=16MB
sslcrtd_program /usr/lib/squid/security_file_certgen -s %(db)s -M 16MB
sslcrtd_children 4 startup=1 idle=1
ssl_bump bump all
http_upgrade_request_protocols WebSocket allow all
tls_outgoing_options cafile=%(worldca)s
sslproxy_cert_error deny all
acl bench_clients src 10.200.0.0/16 198.51.100.0/24
acl CONNECT method CONNECT
http_access allow bench_clients
http_access deny all
cache deny all
cache_mem 0 MB
access_log none
cache_store_log none
cache_log %(d)s/cache.log
pid_filename %(d)s/squid.pid
coredump_dir %(d)s
cache_effective_user proxy
max_filedescriptors 65536
shutdown_lifetime 0 seconds
via off
forwarded_for delete
client_persistent_connections on
server_persistent_connections on
read_timeout 15 minutes
client_lifetime 1 hour
""" % {"ip": PEER_IP, "port": SQUID_PORT, "bport": SQUID_BUMP_PORT, "ca": ca_pem,
            "key": ca_key, "db": db, "worldca": self.world.ca_cert, "d": d})
        proxy_user = pwd.getpwnam("proxy")
        for p in [d, *d.rglob("*")]:
            os.chown(p, proxy_user.pw_uid, proxy_user.pw_gid)
        self.start("squid", self.container_argv(["/usr/sbin/squid", "-N", "-f", conf]))
        self.wait_listening(self.world.container_ns, PEER_IP, SQUID_PORT, "squid")
        self.wait_listening(self.world.container_ns, PEER_IP, SQUID_BUMP_PORT, "squid")

    def start_tinyproxy(self):
        self.starters["tinyproxy"] = self.start_tinyproxy
        d = self.dir / "tinyproxy"
        d.mkdir(exist_ok=True)
        conf = d / "tinyproxy.conf"
        conf.write_text("""
User tinyproxy
Group tinyproxy
Port %(port)d
Listen %(ip)s
Timeout 900
MaxClients 12000
LogLevel Critical
LogFile "%(d)s/tinyproxy.log"
PidFile "%(d)s/tinyproxy.pid"
Allow 10.200.0.0/16
Allow 198.51.100.0/24
ConnectPort %(http)d
ConnectPort %(https)d
DisableViaHeader Yes
""" % {"port": TINYPROXY_PORT, "ip": PEER_IP, "d": d, "http": HTTP_PORT,
            "https": HTTPS_PORT})
        u = pwd.getpwnam("tinyproxy")
        os.chown(d, u.pw_uid, u.pw_gid)
        self.start("tinyproxy", self.container_argv(["/usr/bin/tinyproxy", "-d", "-c", conf]))
        self.wait_listening(self.world.container_ns, PEER_IP, TINYPROXY_PORT, "tinyproxy")

    def probe_exe(self, name):
        """bench/probes/<name>, built for this run by the Makefile's probe rule."""
        exe = self.dir / "probes" / name
        if not exe.exists():
            sh(["make", "-s", "--no-print-directory", "-C", REPO, "BUILD=%s" % self.dir,
                str(exe)], timeout=120)
        return exe

    def start_floor(self):
        """The floor relay: bench/probes/connect_floor.c (splice both ways, nothing
        else), the least any TCP-terminating CONNECT proxy costs."""
        self.starters["floor"] = self.start_floor
        self.start("floor", self.container_argv([self.probe_exe("connect_floor"), PEER_IP,
                                                 FLOOR_PORT]))
        self.wait_listening(self.world.container_ns, PEER_IP, FLOOR_PORT, "floor")

    def start_floor_tls(self):
        """The TLS floor: bench/probes/tls_floor.c (both handshakes, then
        SSL_read/SSL_write both ways, nothing else), the least any TLS-intercepting
        CONNECT proxy costs. It verifies upstream against the world's CA, as openshell
        does with --upstream-ca."""
        self.starters["floor-tls"] = self.start_floor_tls
        self.start("floor-tls", self.container_argv([self.probe_exe("tls_floor"), PEER_IP,
                                                     FLOOR_TLS_PORT, self.world.ca_cert]))
        self.wait_listening(self.world.container_ns, PEER_IP, FLOOR_TLS_PORT, "floor-tls")

    def start_floor_sandbox(self):
        """The floor on openshell's own path: listening on the sandbox's loopback (in
        its network namespace, so its clients run there and cross the fence as
        openshell's do), dialing from the container namespace. What openshell loses
        to this one is its own code; what this one loses to the floor is the path."""
        self.starters["floor-sandbox"] = self.start_floor_sandbox
        self.start("floor-sandbox", self.container_argv([
            self.probe_exe("connect_floor"), SANDBOX_FLOOR_IP, FLOOR_SANDBOX_PORT,
            self.sandbox_net]))
        self.wait_listening(self.sandbox_net, SANDBOX_FLOOR_IP, FLOOR_SANDBOX_PORT,
                            "floor-sandbox")

    def start_floor_tls_sandbox(self):
        """The TLS floor on openshell's own path (see start_floor_sandbox)."""
        self.starters["floor-tls-sandbox"] = self.start_floor_tls_sandbox
        self.start("floor-tls-sandbox", self.container_argv([
            self.probe_exe("tls_floor"), SANDBOX_FLOOR_IP, FLOOR_TLS_SANDBOX_PORT,
            self.world.ca_cert, self.sandbox_net]))
        self.wait_listening(self.sandbox_net, SANDBOX_FLOOR_IP, FLOOR_TLS_SANDBOX_PORT,
                            "floor-tls-sandbox")

    def start_mitmproxy(self):
        self.starters["mitmproxy"] = self.start_mitmproxy
        d = self.dir / "mitm"
        d.mkdir(exist_ok=True)
        env = self.world.base_env({"HOME": str(d)})
        self.start("mitmproxy", self.container_argv([
            "/usr/bin/mitmdump", "-q", "--listen-host", PEER_IP, "--listen-port", MITM_PORT,
            "--set", "confdir=%s" % d, "--set", "ssl_verify_upstream_trusted_ca=%s" %
            self.world.ca_cert, "--set", "http2=false", "--set", "termlog_verbosity=error",
            "--set", "flow_detail=0"]), env=env)
        self.wait_listening(self.world.container_ns, PEER_IP, MITM_PORT, "mitmproxy")

    def start_sshd(self):
        d = self.dir / "sshd"
        d.mkdir(mode=0o700, exist_ok=True)
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d / "hostkey"])
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d / "client"])
        shutil.copy(d / "client.pub", d / "authorized_keys")
        conf = d / "sshd_config"
        conf.write_text("""
ListenAddress 127.0.0.1:%(port)d
HostKey %(d)s/hostkey
PidFile %(d)s/sshd.pid
AuthorizedKeysFile %(d)s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
""" % {"port": SSHD_PORT, "d": d})
        if not Path("/run/sshd").exists():
            os.makedirs("/run/sshd", mode=0o755)
            self._made_run_sshd = True
        self.start("sshd", self.container_argv(["/usr/sbin/sshd", "-D", "-e", "-f", conf]))
        self.wait_listening(self.world.container_ns, "127.0.0.1", SSHD_PORT, "sshd")
        return d / "client"

    def ensure_alive(self, name):
        """Restarts peer `name` if it died (recorded in self.restarts); True if it was."""
        p = self.procs.get(name)
        if p is None or p.poll() is None:
            return False
        why = "%s died (exit status %s) and was restarted" % (name, p.returncode)
        self.restarts.append(why)
        self.log(why)
        self.stop(name)
        self.starters[name]()
        return True

    # ---- teardown ---------------------------------------------------------------------
    def close(self):
        if self._closed:
            return
        self._closed = True
        if self.sandbox is not None:
            try:
                self.sandbox.kill_all()
            except Exception:
                pass
        for name in list(self.procs):
            self.stop(name)
        if self.client_ns is not None:
            sh([W.IP, "netns", "del", self.client_ns], check=False)
        if self._made_run_sshd:
            shutil.rmtree("/run/sshd", ignore_errors=True)
        if self.world is not None:
            self.world.close()
