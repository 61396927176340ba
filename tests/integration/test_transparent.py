"""Transparent capture and policy DNS (issue 3): clients that ignore the proxy
variables are redirected to the proxy inside the sandbox namespace and decided by the
same policy; DNS is answered by the supervisor, which resolves allowed names only.
Every test fails without the feature: without capture the fence resets these
connections, and without the policy DNS responder no name outside /etc/hosts resolves.
"""

import json
import secrets
import signal
import time

import pytest

import world as W

PROXY_PEER = "peer=" + W.CONTAINER_IP   # the proxy dials the world from the container ns
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "GRPC_PROXY",
              "http_proxy", "https_proxy", "all_proxy", "no_proxy", "grpc_proxy")
# argv prefix: run a command with every proxy variable removed
NOPROXY = ["/usr/bin/env"] + [a for v in PROXY_VARS for a in ("-u", v)]
CURL = [*NOPROXY, "curl", "--noproxy", "*", "-sS", "--max-time", "10"]
NODE = "/usr/bin/node"
READY = "capture-probe-ready"


def tok():
    return secrets.token_hex(4)


def dns_name(label):
    """A name only the world DNS knows (not in /etc/hosts): it resolves in the
    sandbox only through the policy DNS responder."""
    return "%s-%s.%s" % (label, tok(), W.DNS_ZONE)


@pytest.fixture(scope="module")
def dns_mark(world):
    """World DNS query log position at the start of this module."""
    return world.dns_mark()


def events(r, path=None, action=None, host=None):
    out = []
    for e in r.audit_lines:
        if path is not None and e.get("path") != path:
            continue
        if action is not None and str(e.get("action", "")).lower() != action:
            continue
        if host is not None and (e.get("dst_endpoint") or {}).get("hostname") != host:
            continue
        out.append(e)
    return out


def assert_no_direct_requests(world, mark):
    direct = [q for q in world.http_requests(mark) if q["peer"].startswith("10.200.")]
    assert direct == [], "the world saw the sandbox directly: %s" % direct


# ---- HTTPS / HTTP clients without the proxy ------------------------------------------------

def test_curl_https_without_proxy_reaches_allowed_host(world, dns_mark):
    mark = world.http_mark()
    pol = world.policy_yaml([("api.allowed.test", 443)])
    r = world.run_sandbox(pol, [*CURL, "--cacert", world.ca_cert, "https://api.allowed.test/"])
    assert r.returncode == 0, str(r)
    assert r.stdout.startswith("hello from api.allowed.test\n"), str(r)
    assert "scheme=https\n" in r.stdout and PROXY_PEER + "\n" in r.stdout, str(r)
    allow = events(r, "transparent", "allow", "api.allowed.test")
    assert allow and allow[0]["dst_endpoint"]["port"] == 443, r.audit_raw
    assert allow[0]["dst_endpoint"]["ip"] == W.HOSTS["api.allowed.test"], r.audit_raw
    assert_no_direct_requests(world, mark)


def test_wget_http_without_proxy_reaches_allowed_host(world, dns_mark):
    pol = world.policy_yaml([("api.allowed.test", 80)])
    r = world.run_sandbox(pol, [*NOPROXY, "wget", "-q", "-O", "-", "-T", "10",
                                "http://api.allowed.test/path?x=1"])
    assert r.returncode == 0, str(r)
    assert r.stdout.startswith("hello from api.allowed.test\n"), str(r)
    assert "path=/path?x=1\n" in r.stdout and PROXY_PEER + "\n" in r.stdout, str(r)
    assert events(r, "transparent", "allow", "api.allowed.test"), r.audit_raw


def test_captured_plain_http_keeps_l7_rules_under_tls_skip(world, dns_mark):
    # `tls: skip` is about TLS; a captured plaintext HTTP flow has none, so the
    # endpoint's L7 rules (read-only) still judge every request.
    ep = W.World.endpoint("api.allowed.test", 80, protocol="rest", enforcement="enforce",
                          access="read-only", tls="skip")
    pol = world.policy_yaml([ep])
    mark = world.http_mark()
    r = world.run_sandbox(pol, ["/bin/sh", "-c",
                                " ".join(CURL) + " http://api.allowed.test/get; echo; " +
                                " ".join(CURL) + " -X DELETE http://api.allowed.test/del"],
                          extra_args=["--upstream-ca", world.ca_cert])
    assert r.stdout.startswith("hello from api.allowed.test\n"), str(r)
    assert '"policy_denied"' in r.stdout, str(r)
    seen = [q["method"] for q in world.http_requests(mark)]
    assert "GET" in seen and "DELETE" not in seen, (seen, str(r))


def test_captured_plain_http_never_resolves_placeholders(world, dns_mark):
    # A captured plain-HTTP flow to an L7 endpoint goes through the relay, upstream in
    # cleartext: a placeholder is refused (as through HTTP_PROXY), the secret never sent.
    secret = "cap-s3cr3t-%s" % tok()
    d = world.dir / "creds-capture"
    d.mkdir(exist_ok=True)
    creds = d / "credentials.yaml"
    creds.write_text("API_TOKEN:\n  value: %s\n  hosts: [api.allowed.test]\n" % json.dumps(secret))
    creds.chmod(0o600)
    ep = W.World.endpoint("api.allowed.test", 80, protocol="rest", enforcement="enforce",
                          access="full")
    pol = world.policy_yaml([ep])
    mark = world.http_mark()
    r = world.run_sandbox(pol, [*CURL, "-H", "Authorization: Bearer openshell:resolve:env:API_TOKEN",
                                "http://api.allowed.test/cap-secret"],
                          extra_args=["--credentials", str(creds)])
    assert '"credential_unavailable"' in r.stdout, str(r)
    assert "/cap-secret" not in [q["path"] for q in world.http_requests(mark)], str(r)
    assert secret not in r.stdout and secret not in r.stderr and secret not in r.audit_raw


def test_https_to_a_name_only_dns_knows(world, dns_mark):
    """The name is resolved through the policy DNS responder (the supervisor asks the
    world DNS), then the TLS flow is captured and admitted by its SNI."""
    name = dns_name("tls")
    pol = world.policy_yaml([(name, 443)])
    mark = world.dns_mark()
    r = world.run_sandbox(pol, [*CURL, "--cacert", world.ca_cert, "https://%s/" % name])
    assert r.returncode == 0, str(r)
    assert r.stdout.startswith("hello from %s\n" % W.DNS_ZONE), str(r)
    assert PROXY_PEER + "\n" in r.stdout, str(r)
    assert events(r, "dns", "allow", name), r.audit_raw
    assert events(r, "transparent", "allow", name), r.audit_raw
    peers = {q["peer"] for q in world.dns_queries(mark) if q["name"] == name}
    assert peers == {W.CONTAINER_IP}, world.dns_queries(mark)


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_denied_host_fails_at_once_and_is_logged(world, dns_mark, scheme):
    """denied.test is in /etc/hosts, so the flow is captured and denied by its SNI /
    Host: TLS gets a reset, plain HTTP the proxy's 403 JSON body."""
    mark = world.http_mark()
    pol = world.policy_yaml([("api.allowed.test", 80), ("api.allowed.test", 443)])
    t = time.monotonic()
    r = world.run_sandbox(pol, [*CURL, "--cacert", world.ca_cert, "-w", "\n%{http_code}",
                                "%s://denied.test/" % scheme])
    assert time.monotonic() - t < 10, str(r)
    if scheme == "https":
        assert r.returncode != 0, str(r)
    else:
        body, _, code = r.stdout.rpartition("\n")
        assert code == "403", str(r)
        assert json.loads(body)["error"] == "policy_denied", str(r)
    assert "hello from" not in r.stdout, str(r)
    deny = events(r, "transparent", "deny", "denied.test")
    assert deny and deny[0]["dst_endpoint"]["port"] == (443 if scheme == "https" else 80), \
        r.audit_raw
    assert world.http_requests(mark) == [], "a denied flow reached the world"


def test_wget_denied_fails_fast(world, dns_mark):
    pol = world.policy_yaml([("api.allowed.test", 80)])
    t = time.monotonic()
    r = world.run_sandbox(pol, [*NOPROXY, "wget", "-q", "-O", "-", "-T", "10", "--tries=1",
                                "http://denied.test/"])
    assert r.returncode != 0, str(r)
    assert time.monotonic() - t < 10, str(r)
    assert events(r, "transparent", "deny", "denied.test"), r.audit_raw


def test_denied_names_get_nxdomain_without_any_lookup(world, dns_mark):
    secret = "secret-payload-%s.denied.test" % tok()
    pol = world.policy_yaml([("api.allowed.test", 443)])
    mark = world.dns_mark()
    t = time.monotonic()
    r = world.run_sandbox(pol, [*CURL, "https://%s/" % secret])
    assert r.returncode == 6, str(r)  # curl: could not resolve host
    assert time.monotonic() - t < 10, str(r)
    deny = events(r, "dns", "deny", secret)
    assert deny, r.audit_raw
    assert world.dns_names(mark) == set(), world.dns_queries(mark)


DNS_PROBE = r'''
import json, socket, struct, sys
def query(name, qtype=1):
    body = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", 0x5151, 0x0100, 1, 0, 0, 0) + body + struct.pack("!HH", qtype, 1)
out = {}
for name, server in zip(sys.argv[1::2], sys.argv[2::2]):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(query(name), (server, 53))
        r = s.recv(512)
        out["udp " + name] = {"rcode": r[3] & 15, "an": r[7]}
    except OSError as e:
        out["udp " + name] = str(e)
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.settimeout(3)
    try:
        t.connect((server, 53))
        q = query(name, 16)
        t.sendall(struct.pack("!H", len(q)) + q)
        r = t.recv(2 + 512)[2:]
        out["tcp " + name] = {"rcode": r[3] & 15, "an": r[7]}
    except OSError as e:
        out["tcp " + name] = str(e)
print(json.dumps(out))
'''


def test_dns_to_any_server_is_answered_by_policy(world, dns_mark):
    """UDP and TCP port 53 to any address (the world's own DNS server included) are
    redirected to the supervisor's responder: an allowed name is answered, a denied one
    gets NXDOMAIN, and the world DNS sees no query from the sandbox."""
    ok, bad = dns_name("ok"), "exfil-%s.denied.test" % tok()
    pol = world.policy_yaml([(ok, 443)])
    mark = world.dns_mark()
    r = world.run_sandbox(pol, [W.PYTHON, "-c", DNS_PROBE, ok, W.DNS_IP, bad, W.DNS_IP,
                                ok, "203.0.113.10"])
    assert r.returncode == 0, str(r)
    o = r.json_stdout()
    assert o["udp " + ok] == {"rcode": 0, "an": 1}, o
    assert o["tcp " + ok] == {"rcode": 0, "an": 0}, o    # TXT of an allowed name: NODATA
    assert o["udp " + bad] == {"rcode": 3, "an": 0}, o
    assert o["tcp " + bad] == {"rcode": 3, "an": 0}, o
    for q in world.dns_queries(mark):
        assert q["peer"] == W.CONTAINER_IP, world.dns_queries(mark)
        assert "denied" not in q["name"], world.dns_queries(mark)


def test_local_names_answer_without_denial(world, dns_mark):
    pol = world.policy_yaml([("api.allowed.test", 443)])
    r = world.run_sandbox(pol, ["/bin/sh", "-c",
                                "getent ahostsv4 \"$(hostname)\" && getent ahostsv4 localhost"])
    assert r.returncode == 0, str(r)
    assert "127.0.0.1" in r.stdout, str(r)
    assert events(r, action="deny") == [], r.audit_raw


def test_sandbox_resolv_conf_is_a_private_bind(world, dns_mark):
    """The workload sees the supervisor's resolv.conf (a read-only bind in its own mount
    namespace); the container's file is never modified."""
    before = world.run_in_container(["cat", "/etc/resolv.conf"]).stdout
    r = world.run_sandbox(world.policy_yaml([("api.allowed.test", 443)]),
                          ["/bin/sh", "-c", "cat /etc/resolv.conf; echo x >> /etc/resolv.conf"])
    assert "nameserver 10.200." in r.stdout and W.DNS_IP not in r.stdout, str(r)
    assert r.returncode != 0, "the sandbox could write its resolv.conf\n%s" % r
    assert world.run_in_container(["cat", "/etc/resolv.conf"]).stdout == before
    assert W.DNS_IP in before, before


# ---- raw TCP --------------------------------------------------------------------------------

ECHO_PROBE = r'''
import json, socket, sys, time
host, good, bad = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = {}
s = socket.create_connection((host, good), timeout=5)
payload = b"transparent-echo-" + sys.argv[4].encode()
s.sendall(payload)
got = b""
while len(got) < len(payload):
    d = s.recv(100)
    if not d:
        break
    got += d
s.close()
out["echo"] = got.decode(errors="replace")
t = time.monotonic()
try:
    b = socket.create_connection((host, bad), timeout=5)
    b.sendall(b"anything")
    out["bad"] = "data: %r" % b.recv(100)
except OSError as e:
    out["bad"] = "%s: %s" % (type(e).__name__, e)
out["bad_elapsed"] = time.monotonic() - t
print(json.dumps(out))
'''


@pytest.mark.parametrize("via", ["dns", "hosts"])
def test_raw_tcp_to_allowed_port_only(world, dns_mark, via):
    """protocol: tcp endpoint: a plain socket exchanges bytes with the world's echo
    server; another port of the same host is refused. The flow carries no name, so it is
    decided by the name the sandbox resolved for that address (through the policy DNS,
    or from /etc/hosts)."""
    host = dns_name("echo") if via == "dns" else "plain.allowed.test"
    pol = world.policy_yaml([World_endpoint(host, W.ECHO_PORT, protocol="tcp")])
    t = tok()
    r = world.run_sandbox(pol, [W.PYTHON, "-c", ECHO_PROBE, host, str(W.ECHO_PORT), "8080", t])
    assert r.returncode == 0, str(r)
    o = r.json_stdout()
    assert o["echo"] == "transparent-echo-" + t, o
    assert o["bad"].startswith(("ConnectionResetError", "ConnectionRefusedError",
                                "BrokenPipeError", "data: b''")), o
    assert o["bad_elapsed"] < 3, o
    assert events(r, "transparent", "allow", host), r.audit_raw
    deny = events(r, "transparent", "deny", host)
    assert deny and deny[0]["dst_endpoint"]["port"] == 8080, r.audit_raw


def World_endpoint(host, port, **extra):
    return W.World.endpoint(host, port, **extra)


NODE_PROBE = r'''
const https = require("https"), net = require("net"), fs = require("fs");
const [host, ca, echoHost] = process.argv.slice(1);
const out = {};
https.get({host, port: 443, path: "/node", ca: fs.readFileSync(ca), agent: false}, (res) => {
  let body = "";
  res.on("data", (d) => body += d);
  res.on("end", () => {
    out.https = body;
    const s = net.connect(7, echoHost, () => s.end("node-net-echo"));
    let echo = "";
    s.on("data", (d) => echo += d);
    s.on("close", () => { out.echo = echo; console.log(JSON.stringify(out)); });
    s.on("error", (e) => { out.echo = String(e); });
  });
}).on("error", (e) => { out.https = String(e); console.log(JSON.stringify(out)); });
'''


def test_node_ignoring_proxy_env_reaches_allowed_server(world, dns_mark):
    if not __import__("os").path.exists(NODE):
        pytest.skip("node is not installed at %s" % NODE)
    echo = dns_name("node")
    pol = world.policy_yaml([("api.allowed.test", 443),
                             World_endpoint(echo, W.ECHO_PORT, protocol="tcp")])
    r = world.run_sandbox(pol, [NODE, "-e", NODE_PROBE, "api.allowed.test", world.ca_cert,
                                echo])
    assert r.returncode == 0, str(r)
    o = r.json_stdout()
    assert o["https"].startswith("hello from api.allowed.test\n"), o
    assert "path=/node\n" in o["https"] and PROXY_PEER + "\n" in o["https"], o
    assert o["echo"] == "node-net-echo", o


# ---- the capture ports cannot be dialed directly --------------------------------------------

DIRECT_PROBE = r'''
import json, socket, sys, time
out = {}
for port in map(int, sys.argv[1:]):
    t = time.monotonic()
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: api.allowed.test\r\n\r\n")
        out["tcp %d" % port] = "data: %r" % s.recv(100)
    except OSError as e:
        out["tcp %d" % port] = type(e).__name__
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(1)
    try:
        u.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01",
                 ("127.0.0.1", port))
        out["udp %d" % port] = "data: %r" % u.recv(100)
    except OSError as e:
        out["udp %d" % port] = type(e).__name__
    out["elapsed %d" % port] = time.monotonic() - t
print(json.dumps(out))
'''
CAPTURE_TCP_PORT, CAPTURE_DNS_PORT = 15001, 15053


def test_capture_ports_refuse_direct_connections(world, dns_mark):
    """As root inside the sandbox namespace: the transparent listener and the DNS
    responder accept only flows nftables redirected to them."""
    h = world.start_sandbox(world.policy_yaml([("api.allowed.test", 80)]),
                            ["/bin/sh", "-c", "echo %s; exec sleep 30" % READY])
    try:
        assert h.wait_for_stdout(READY), str(h.wait(timeout=1))
        for argv in ([W.PYTHON, "-c", DIRECT_PROBE, str(CAPTURE_TCP_PORT),
                      str(CAPTURE_DNS_PORT)],):
            r = world.run_in_sandbox_netns(h, argv)
            o = r.json_stdout()
            for port in (CAPTURE_TCP_PORT, CAPTURE_DNS_PORT):
                assert o["tcp %d" % port] in ("ConnectionRefusedError",
                                              "ConnectionResetError"), o
                assert not o["udp %d" % port].startswith("data"), o
                assert o["elapsed %d" % port] < 2, o
        # the same as the unprivileged workload would see it
        r = world.run_in_sandbox_netns(h, ["setpriv", "--reuid=1500", "--regid=1500",
                                           "--clear-groups", W.PYTHON, "-c", DIRECT_PROBE,
                                           str(CAPTURE_TCP_PORT)])
        assert r.json_stdout()["tcp %d" % CAPTURE_TCP_PORT] in (
            "ConnectionRefusedError", "ConnectionResetError"), str(r)
    finally:
        h.signal(signal.SIGTERM)
        h.wait(timeout=15)


COBIND_PROBE = r'''
import json, socket, sys
out = {}
for addr in ("127.0.0.1", "0.0.0.0"):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        u.bind((addr, int(sys.argv[1]))); out[addr] = "bound"
    except OSError as e:
        out[addr] = type(e).__name__
print(json.dumps(out))
'''


def test_policy_dns_port_cannot_be_shared_by_the_workload(world, dns_mark):
    """UDP sockets that both set SO_REUSEADDR may share a port on Linux whoever owns
    them: the responder's socket does not set it, so the workload cannot bind its port
    and take the sandbox's DNS queries."""
    r = world.run_sandbox(world.policy_yaml([("api.allowed.test", 80)]),
                          [W.PYTHON, "-c", COBIND_PROBE, str(CAPTURE_DNS_PORT)])
    o = r.json_stdout()
    assert o == {"127.0.0.1": "OSError", "0.0.0.0": "OSError"}, str(r)


FAST_FAIL_PROBE = r'''
import json, socket, sys, time
out = {}
t = time.monotonic()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(2)
try:
    u.connect(("198.51.100.10", 9999)); u.send(b"x"); u.send(b"x"); u.recv(10)
    out["udp"] = "data"
except OSError as e:
    out["udp"] = type(e).__name__
out["udp_elapsed"] = time.monotonic() - t
t = time.monotonic()
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect((sys.argv[1], 443)); out["v6"] = "connected"
except OSError as e:
    out["v6"] = type(e).__name__
out["v6_elapsed"] = time.monotonic() - t
print(json.dumps(out))
'''


def test_other_udp_and_ipv6_still_fail_fast(world, dns_mark):
    mark = world.udp_mark()
    r = world.run_sandbox(world.policy_yaml([("api.allowed.test", 443)]),
                          [W.PYTHON, "-c", FAST_FAIL_PROBE, W.WORLD_V6])
    o = r.json_stdout()
    assert o["udp"] != "data" and o["udp_elapsed"] < 1, o
    assert o["v6"] != "connected" and o["v6_elapsed"] < 1, o
    time.sleep(0.3)
    assert world.udp_datagrams(mark) == [], world.udp_datagrams(mark)


# Last in the module (pytest keeps file order): over every test above, the world DNS
# never saw a name under denied.test, nor any query from the sandbox itself.
def test_zz_world_dns_never_saw_denied_names(world, dns_mark):
    queries = world.dns_queries(dns_mark)
    assert not [q for q in queries if "denied" in q["name"]], queries
    assert not [q for q in queries if q["peer"].startswith("10.200.")], queries
