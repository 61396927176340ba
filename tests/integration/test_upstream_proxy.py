"""Upstream (corporate) proxy chaining: --upstream-proxy and its companions.

The `corp` fixture (this module only) adds a corporate network to the world:

    container --cv/wv--> world ns:  198.51.100.250/32 on wv-<id>
                                    tinyproxy :3128 (open), :3129 (BasicAuth)
                                    203.0.113.254/32 on xw-<id>, route 203.0.113.200/32
                         --xw/xi--> intranet ns (unnamed, held by its server process):
                                    203.0.113.200 "intranet.allowed.test", HTTP :80 and
                                    HTTPS :443 (world leaf certificate)

The world namespace does not forward packets, so the container can reach the intranet
server only through tinyproxy: every allowed request below fails without chaining. The
intranet server logs who connected (`peer`): 203.0.113.254 is tinyproxy. Each tinyproxy
logs every request line, so "never reached the corporate proxy" is checked on its log.
The intranet namespace has no name and dies with its server process (and the veth pair
with it); the fixture also removes the extra address and restores the hosts file.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

import world as W

CORP_IP = "198.51.100.250"
OPEN_PORT = 3128
AUTH_PORT = 3129
INTRANET_IP = "203.0.113.200"
INTRANET_GW = "203.0.113.254"           # tinyproxy's address towards the intranet
INTRANET = "intranet.allowed.test"      # covered by the world leaf's *.allowed.test SAN
OPEN_URL = "http://%s:%d" % (CORP_IP, OPEN_PORT)
AUTH_URL = "http://%s:%d" % (CORP_IP, AUTH_PORT)
CORP_USER, CORP_PASS = "corpuser", "s3cr3t-Pw"
TINYPROXY = "/usr/bin/tinyproxy"
CURL = ["curl", "-sS", "--max-time", "30"]
UPSTREAM_CA = "--upstream-ca"

INTRANET_SERVER = r'''
import http.server, json, signal, socketserver, ssl, sys, threading
cert, key, log = sys.argv[1:4]
lock = threading.Lock()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        rec = {"scheme": self.server.scheme, "method": self.command, "path": self.path,
               "host": self.headers.get("Host"), "peer": self.client_address[0],
               "proxy_authorization": self.headers.get("Proxy-Authorization")}
        with lock, open(log, "a") as f:
            f.write(json.dumps(rec) + "\n")
        body = ("hello from intranet.allowed.test\nmethod=%s\npath=%s\nhost=%s\nscheme=%s\n"
                "peer=%s\n" % (self.command, self.path, rec["host"], self.server.scheme,
                               rec["peer"])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True
    do_GET = do_POST = do_PUT = do_DELETE = answer

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

plain = Server(("0.0.0.0", 80), Handler)
plain.scheme = "http"
tls = Server(("0.0.0.0", 443), Handler)
tls.scheme = "https"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
for s in (plain, tls):
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("READY", flush=True)
signal.pause()
'''

TINYPROXY_CONF = """Port {port}
Listen {ip}
Timeout 60
LogFile "{log}"
LogLevel Connect
MaxClients 32
Allow {client}
ConnectPort 443
ConnectPort 80
{extra}
"""


def _listening(pid, ip, port):
    """Is there a listening TCP socket on ip:port in pid's network namespace?"""
    want = "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(ip.split("."))), port)
    try:
        with open("/proc/%d/net/tcp" % pid) as f:
            rows = [line.split() for line in f.readlines()[1:]]
    except OSError:
        return False
    return any(r[1] == want and r[3] == "0A" for r in rows)


class Corp:
    """The corporate proxies and the intranet behind them (see the module docstring)."""

    def __init__(self, world):
        self.world = world
        self.dir = world.dir / "corp"
        self.xw = "xw-" + world.id
        self.xi = "xi-" + world.id
        self.intranet_log = self.dir / "intranet.jsonl"
        self.logs = {OPEN_PORT: self.dir / "tinyproxy-open.log",
                     AUTH_PORT: self.dir / "tinyproxy-auth.log"}
        self.procs = []
        self.intranet = None
        self.hosts_before = None
        self.corp_ip_added = False

    # ---- construction ----
    def start(self):
        self.dir.mkdir(mode=0o755)
        self.hosts_before = Path(self.world.hosts_file).read_text()
        Path(self.world.hosts_file).write_text(
            self.hosts_before + "%s\t%s\n" % (INTRANET_IP, INTRANET))
        self._start_intranet()
        self._wire_intranet()
        W.run([W.IP, "-n", self.world.world_ns, "addr", "add", CORP_IP + "/32", "dev",
               self.world.world_if])
        self.corp_ip_added = True
        self._start_tinyproxy(OPEN_PORT, "")
        self._start_tinyproxy(AUTH_PORT, "BasicAuth %s %s" % (CORP_USER, CORP_PASS))

    def _start_intranet(self):
        err = open(self.dir / "intranet.stderr", "wb")
        try:
            self.intranet = subprocess.Popen(
                [W.UNSHARE, "--net", "--", W.PYTHON, "-c", INTRANET_SERVER,
                 self.world.leaf_cert, self.world.leaf_key, str(self.intranet_log)],
                stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=W._set_pdeathsig)
        finally:
            err.close()
        if self.intranet.stdout.readline().strip() != "READY":
            raise W.WorldError("intranet server did not start: %s" %
                               (self.dir / "intranet.stderr").read_text()[-2000:])

    def _intranet_ip(self, *args):
        W.run([W.NSENTER, "--net=/proc/%d/ns/net" % self.intranet.pid, W.IP, *args])

    def _wire_intranet(self):
        ws = self.world.world_ns
        W.run([W.IP, "link", "add", self.xw, "netns", ws, "type", "veth", "peer", "name",
               self.xi, "netns", str(self.intranet.pid)])
        W.run([W.IP, "-n", ws, "addr", "add", INTRANET_GW + "/32", "dev", self.xw])
        W.run([W.IP, "-n", ws, "link", "set", self.xw, "up"])
        W.run([W.IP, "-n", ws, "route", "add", INTRANET_IP + "/32", "dev", self.xw,
               "src", INTRANET_GW])
        self._intranet_ip("link", "set", "lo", "up")
        self._intranet_ip("addr", "add", INTRANET_IP + "/32", "dev", self.xi)
        self._intranet_ip("link", "set", self.xi, "up")
        self._intranet_ip("route", "add", INTRANET_GW + "/32", "dev", self.xi)

    def _start_tinyproxy(self, port, extra):
        conf = self.dir / ("tinyproxy-%d.conf" % port)
        conf.write_text(TINYPROXY_CONF.format(port=port, ip=CORP_IP, log=self.logs[port],
                                              client=W.CONTAINER_IP, extra=extra))
        os.chmod(conf, 0o600)
        # tinyproxy runs as root (no User line) so that PR_SET_PDEATHSIG survives:
        # it dies with the test process. The world's hosts file resolves names
        # (--upstream-proxy-connect-by-hostname).
        argv = self.world.container_argv([TINYPROXY, "-d", "-c", str(conf)],
                                         netns=self.world.netns_path(self.world.world_ns))
        out = open(self.dir / ("tinyproxy-%d.out" % port), "wb")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, preexec_fn=W._set_pdeathsig)
        finally:
            out.close()
        self.procs.append(p)
        deadline = time.monotonic() + 10
        while not _listening(p.pid, CORP_IP, port):
            if p.poll() is not None or time.monotonic() > deadline:
                raise W.WorldError("tinyproxy on :%d did not start: %s" % (
                    port, self._read(self.logs[port])[-2000:]))
            time.sleep(0.05)

    # ---- teardown ----
    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
        if self.intranet is not None and self.intranet.poll() is None:
            self.intranet.kill()  # its namespace, and the veth pair, go with it
            self.intranet.wait(timeout=5)
        W.run([W.IP, "-n", self.world.world_ns, "link", "del", self.xw], check=False)
        if self.corp_ip_added:
            W.run([W.IP, "-n", self.world.world_ns, "addr", "del", CORP_IP + "/32", "dev",
                   self.world.world_if], check=False)
        if self.hosts_before is not None:
            Path(self.world.hosts_file).write_text(self.hosts_before)

    # ---- logs ----
    @staticmethod
    def _read(path):
        try:
            return Path(path).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def mark(self, port=OPEN_PORT):
        return len(self._read(self.logs[port]).splitlines())

    def requests(self, since, port=OPEN_PORT):
        """Request lines tinyproxy received after mark `since`, e.g.
        'CONNECT 203.0.113.200:443 HTTP/1.1'."""
        out = []
        for line in self._read(self.logs[port]).splitlines()[since:]:
            _, sep, req = line.partition("]: Request (file descriptor ")
            if sep:
                out.append(req.split("): ", 1)[1])
        return out

    def log_text(self, since, port=OPEN_PORT):
        return "\n".join(self._read(self.logs[port]).splitlines()[since:])

    def intranet_mark(self):
        return len(self._read(self.intranet_log).splitlines())

    def intranet_requests(self, since):
        return [json.loads(x) for x in self._read(self.intranet_log).splitlines()[since:]]


@pytest.fixture(scope="module")
def corp(world):
    if not os.access(TINYPROXY, os.X_OK):
        pytest.skip("tinyproxy is not installed (scripts/deps.sh)")
    c = Corp(world)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def chain(url=OPEN_URL, *more):
    return ["--upstream-proxy", url, *more]


def intranet_policy(world, port=443, **extra):
    return world.policy_yaml([W.World.endpoint(INTRANET, port, **extra)])


def audit_allows(r):
    return [e for e in r.audit_lines if e.get("action") == "allow"]


def sh(script):
    return ["/bin/sh", "-c", script]


# ---- the world ----------------------------------------------------------------------

def test_intranet_is_reachable_only_through_the_corporate_proxy(world, corp):
    """Without chaining the intranet cannot be reached: what makes the tests below bite."""
    direct = world.run_in_container([*CURL, "--connect-timeout", "5",
                                     "http://%s/direct" % INTRANET])
    assert direct.returncode != 0, str(direct)
    via = world.run_in_container([*CURL, "-x", OPEN_URL, "http://%s/via" % INTRANET])
    assert via.returncode == 0 and via.stdout.startswith("hello from " + INTRANET), str(via)
    assert "peer=" + INTRANET_GW in via.stdout, str(via)


# ---- allowed traffic goes through the chain -----------------------------------------

def test_https_tunnel_goes_through_the_corporate_proxy(world, corp):
    mark, imark = corp.mark(), corp.intranet_mark()
    r = world.run_sandbox(intranet_policy(world),
                          [*CURL, "--cacert", world.ca_cert, "https://%s/tunnel" % INTRANET],
                          extra_args=chain())
    assert r.returncode == 0 and r.stdout.startswith("hello from " + INTRANET), str(r)
    assert "peer=" + INTRANET_GW in r.stdout, str(r)          # tinyproxy dialed it
    # the CONNECT names the address the proxy resolved and SSRF-checked
    assert corp.requests(mark) == ["CONNECT %s:443 HTTP/1.1" % INTRANET_IP], \
        corp.log_text(mark)
    assert [q["path"] for q in corp.intranet_requests(imark)] == ["/tunnel"]
    ev = audit_allows(r)
    assert ev and ev[0]["dst_endpoint"]["ip"] == INTRANET_IP, str(r)
    assert "via upstream proxy %s:%d" % (CORP_IP, OPEN_PORT) in ev[0]["message"], str(r)


def test_plain_http_goes_to_the_corporate_proxy_in_absolute_form(world, corp):
    mark, imark = corp.mark(), corp.intranet_mark()
    r = world.run_sandbox(intranet_policy(world, 80), [*CURL, "http://%s/plain?q=1" % INTRANET],
                          extra_args=chain())
    assert r.returncode == 0 and r.stdout.startswith("hello from " + INTRANET), str(r)
    assert "peer=" + INTRANET_GW in r.stdout, str(r)
    assert corp.requests(mark) == ["GET http://%s:80/plain?q=1 HTTP/1.1" % INTRANET_IP], \
        corp.log_text(mark)
    assert [q["path"] for q in corp.intranet_requests(imark)] == ["/plain?q=1"]


def test_intercepted_l7_endpoint_through_the_chain(world, corp):
    """TLS interception and L7 rules work on top of the corporate tunnel."""
    ep = W.World.endpoint(INTRANET, 443, protocol="rest", enforcement="enforce",
                          access="read-only")
    mark, imark = corp.mark(), corp.intranet_mark()
    script = ("curl -sS --max-time 30 https://%s/read; echo; "
              "curl -sS --max-time 30 -X DELETE https://%s/delete" % (INTRANET, INTRANET))
    r = world.run_sandbox(world.policy_yaml([ep]), sh(script),
                          extra_args=chain(OPEN_URL, UPSTREAM_CA, world.ca_cert))
    assert r.returncode == 0, str(r)
    assert r.stdout.startswith("hello from " + INTRANET), str(r)  # trusted the sandbox CA
    denied = json.loads(r.stdout.strip().splitlines()[-1])
    assert denied["error"] == "policy_denied" and denied["method"] == "DELETE", str(r)
    assert [q["path"] for q in corp.intranet_requests(imark)] == ["/read"], str(r)
    assert corp.requests(mark) == ["CONNECT %s:443 HTTP/1.1" % INTRANET_IP] * 2, \
        corp.log_text(mark)


def test_captured_flow_goes_through_the_chain(world, corp):
    """A client that ignores the proxy variables is captured, decided, then chained."""
    mark = corp.mark()
    r = world.run_sandbox(intranet_policy(world),
                          [*CURL, "--noproxy", "*", "--cacert", world.ca_cert,
                           "https://%s/captured" % INTRANET], extra_args=chain())
    assert r.returncode == 0 and r.stdout.startswith("hello from " + INTRANET), str(r)
    assert corp.requests(mark) == ["CONNECT %s:443 HTTP/1.1" % INTRANET_IP], \
        corp.log_text(mark)
    assert audit_allows(r)[0]["path"] == "transparent", str(r)


def test_connect_by_hostname(world, corp):
    """The opt-in names the host upstream, for CONNECT and for absolute-form requests
    (tinyproxy rewrites Host from the absolute-form authority; by name the origin's
    virtual host is kept)."""
    pol = world.policy_yaml([W.World.endpoint(INTRANET, 443), W.World.endpoint(INTRANET, 80)])
    mark, imark = corp.mark(), corp.intranet_mark()
    script = ("curl -sS --max-time 30 --cacert %s https://%s/byname; "
              "curl -sS --max-time 30 http://%s/plain-byname" % (world.ca_cert, INTRANET,
                                                                 INTRANET))
    r = world.run_sandbox(pol, sh(script),
                          extra_args=chain(OPEN_URL, "--upstream-proxy-connect-by-hostname"))
    assert r.returncode == 0 and r.stdout.count("hello from " + INTRANET) == 2, str(r)
    assert corp.requests(mark) == ["CONNECT %s:443 HTTP/1.1" % INTRANET,
                                   "GET http://%s:80/plain-byname HTTP/1.1" % INTRANET], \
        corp.log_text(mark)
    assert [q["host"] for q in corp.intranet_requests(imark)] == [INTRANET, INTRANET]


def test_no_proxy_destinations_are_dialed_directly(world, corp):
    pol = world.policy_yaml([("api.allowed.test", 443), ("plain.allowed.test", 80),
                             W.World.endpoint(INTRANET, 443)])
    mark, wmark = corp.mark(), world.http_mark()
    script = "; ".join([
        "curl -sS --max-time 30 --cacert %s https://api.allowed.test/byname" % world.ca_cert,
        "curl -sS --max-time 30 http://plain.allowed.test/bycidr",
        "curl -sS --max-time 30 --cacert %s https://%s/chained" % (world.ca_cert, INTRANET)])
    r = world.run_sandbox(pol, sh(script), extra_args=chain(
        OPEN_URL, "--upstream-no-proxy", "api.allowed.test, 198.51.100.0/24:80"))
    assert r.returncode == 0, str(r)
    assert r.stdout.count("peer=" + W.CONTAINER_IP) == 2, str(r)  # straight from our proxy
    assert "hello from " + INTRANET in r.stdout, str(r)
    served = {q["path"]: q["peer"] for q in world.http_requests(wmark)}
    assert served == {"/byname": W.CONTAINER_IP, "/bycidr": W.CONTAINER_IP}, served
    assert corp.requests(mark) == ["CONNECT %s:443 HTTP/1.1" % INTRANET_IP], \
        corp.log_text(mark)


# ---- what never reaches the corporate proxy ----------------------------------------

def test_denied_host_never_reaches_the_corporate_proxy(world, corp):
    pol = intranet_policy(world)
    mark = corp.mark()
    p = world.sandbox_connect(pol, "denied.test", 443, extra_args=chain())
    assert p.status == 403 and p.json["error"] == "policy_denied", str(p.result)
    p = world.sandbox_forward(pol, "http://denied.test/x", extra_args=chain())
    assert p.status == 403 and p.json["error"] == "policy_denied", str(p.result)
    assert corp.log_text(mark).strip() == "", corp.log_text(mark)


def test_ssrf_is_checked_before_the_corporate_proxy(world, corp):
    """An allowed name resolving to an internal address is refused here, not upstream."""
    pol = world.policy_yaml([W.World.endpoint("private.allowed.test", 443, allowed_ips=None),
                             W.World.endpoint("loop.allowed.test", 443, allowed_ips=None)])
    mark = corp.mark()
    for host in ("private.allowed.test", "loop.allowed.test"):
        p = world.sandbox_connect(pol, host, 443, extra_args=chain())
        assert p.status == 403 and p.json["error"] == "ssrf_denied", str(p.result)
    assert corp.log_text(mark).strip() == "", corp.log_text(mark)


# ---- credentials ----------------------------------------------------------------------

@pytest.fixture
def auth_file(world, corp):
    path = corp.dir / "auth"
    path.write_text("%s:%s\n" % (CORP_USER, CORP_PASS))
    os.chmod(path, 0o600)
    yield str(path)
    path.unlink()


def test_basic_credentials_reach_the_corporate_proxy(world, corp, auth_file):
    pol = intranet_policy(world)
    # without credentials: the corporate proxy's 407 becomes our 502 naming it
    mark = corp.mark(AUTH_PORT)
    p = world.sandbox_connect(pol, INTRANET, 443, extra_args=chain(AUTH_URL))
    assert p.status == 502 and p.json["error"] == "upstream_proxy_refused", str(p.result)
    assert "407" in p.json["detail"] and "%s:%d" % (CORP_IP, AUTH_PORT) in p.json["detail"]
    assert "proxy-authenticate" not in p.headers, p.headers
    assert corp.requests(mark, AUTH_PORT) == ["CONNECT %s:443 HTTP/1.1" % INTRANET_IP]
    # with them: HTTPS and plain HTTP both pass
    pol2 = world.policy_yaml([W.World.endpoint(INTRANET, 443), W.World.endpoint(INTRANET, 80)])
    script = ("curl -sS --max-time 30 --cacert %s https://%s/auth-tls; "
              "curl -sS --max-time 30 http://%s/auth-plain; "
              "cat /proc/self/environ | tr '\\0' '\\n' | grep -ci corpuser || true"
              % (world.ca_cert, INTRANET, INTRANET))
    r = world.run_sandbox(pol2, sh(script), extra_args=chain(
        AUTH_URL, "--upstream-proxy-auth-file", auth_file,
        "--upstream-proxy-auth-allow-insecure", "--log-level", "debug"))
    assert r.returncode == 0, str(r)
    assert r.stdout.count("hello from " + INTRANET) == 2, str(r)
    assert r.stdout.strip().splitlines()[-1] == "0", str(r)   # not in the agent's env
    for secret in (CORP_PASS, "Y29ycHVzZXI6czNjcjN0LVB3"):     # plain and base64
        assert secret not in r.stdout + r.stderr + r.audit_raw, str(r)


# ---- bad values stop the start -----------------------------------------------------------

@pytest.mark.parametrize("value", [
    "https://%s:%d" % (CORP_IP, OPEN_PORT),
    "http://%s" % CORP_IP,
    "http://user:pw@%s:%d" % (CORP_IP, OPEN_PORT),
    "http://%s:%d/path" % (CORP_IP, OPEN_PORT),
    "http://nothere.corp.test:3128",
])
def test_bad_upstream_proxy_value_stops_the_start(world, value):
    r = world.run_sandbox(None, ["/bin/echo", "WORKLOAD RAN"], extra_args=chain(value))
    assert r.returncode != 0 and "WORKLOAD RAN" not in r.stdout, str(r)
    assert "--upstream-proxy" in r.stderr, str(r)
    assert value in r.stderr or "nothere.corp.test" in r.stderr, str(r)


def test_bad_no_proxy_value_stops_the_start(world):
    r = world.run_sandbox(None, ["/bin/echo", "WORKLOAD RAN"], extra_args=chain(
        OPEN_URL, "--upstream-no-proxy", "ok.test,bad..name"))
    assert r.returncode != 0 and "WORKLOAD RAN" not in r.stdout, str(r)
    assert "--upstream-no-proxy" in r.stderr and "bad..name" in r.stderr, str(r)


def test_auth_file_without_the_acknowledgement_stops_the_start(world, corp, auth_file):
    r = world.run_sandbox(None, ["/bin/echo", "WORKLOAD RAN"], extra_args=chain(
        AUTH_URL, "--upstream-proxy-auth-file", auth_file))
    assert r.returncode != 0 and "WORKLOAD RAN" not in r.stdout, str(r)
    assert "--upstream-proxy-auth-allow-insecure" in r.stderr, str(r)
    assert "clear text" in r.stderr, str(r)


def test_auth_file_must_be_private(world, corp, auth_file):
    os.chmod(auth_file, 0o640)
    r = world.run_sandbox(None, ["/bin/echo", "WORKLOAD RAN"], extra_args=chain(
        AUTH_URL, "--upstream-proxy-auth-file", auth_file,
        "--upstream-proxy-auth-allow-insecure"))
    assert r.returncode != 0 and "WORKLOAD RAN" not in r.stdout, str(r)
    assert "--upstream-proxy-auth-file" in r.stderr and "0640" in r.stderr, str(r)
    assert CORP_PASS not in r.stderr, str(r)


def test_auth_file_needs_an_upstream_proxy(world, corp, auth_file):
    r = world.run_sandbox(None, ["/bin/echo", "WORKLOAD RAN"], extra_args=[
        "--upstream-proxy-auth-file", auth_file, "--upstream-proxy-auth-allow-insecure"])
    assert r.returncode != 0 and "WORKLOAD RAN" not in r.stdout, str(r)
    assert "requires --upstream-proxy" in r.stderr, str(r)
