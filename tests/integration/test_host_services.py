"""Host-local services (host.openshell.internal) and the host-tool route.

The container's loopback is the supervisor's own: a service bound to 127.0.0.1 in the
container namespace is reachable from the sandbox only as host.openshell.internal on a
port a policy endpoint declares for exactly that name. Every other way to loopback
(127.0.0.1, a name resolving to it, an undeclared port of the alias) stays denied.

tools.openshell.internal is answered by the proxy itself: admitted calls go to the tool
broker (here a Unix-socket HTTP server run by the test) with identity headers the proxy
sets; what the caller sends under those names is dropped.
"""

import http.server
import json
import os
import socketserver
import subprocess
import threading
import time

import pytest

import world as W

CURL = "curl -sS --max-time 20"
SANDBOX_ID = "sbx-test-42"


def sh(script):
    return ["/bin/sh", "-c", script]


# ---- a service on the container's loopback ------------------------------------------

SERVICE = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("loopback-service:%s:%s\n" % (sys.argv[1], self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


@pytest.fixture
def loopback_services(world):
    """HTTP services on 127.0.0.1:8080 and :8081 of the container namespace."""
    procs = [subprocess.Popen(world.container_argv([W.PYTHON, "-c", SERVICE, str(port)]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=world.base_env())
             for port in (8080, 8081)]
    try:
        deadline = time.monotonic() + 10
        while True:
            r = world.run_in_container(["curl", "-s", "http://127.0.0.1:8080/",
                                        "http://127.0.0.1:8081/"])
            if r.stdout.count("loopback-service") == 2:
                break
            assert time.monotonic() < deadline, "loopback services did not start: %s" % r
            time.sleep(0.1)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def alias_policy(world, ports=(8080,), extra_eps=()):
    eps = [W.World.endpoint(W_ALIAS, p, allowed_ips=None) for p in ports] + list(extra_eps)
    return world.policy_yaml(eps)


W_ALIAS = "host.openshell.internal"


def test_declared_alias_port_reaches_the_container_loopback(world, loopback_services):
    r = world.run_sandbox(alias_policy(world),
                          sh(CURL + " http://host.openshell.internal:8080/x"))
    assert r.stdout == "loopback-service:8080:/x\n", str(r)
    ev = [e for e in r.audit_lines if e.get("dst_endpoint", {}).get("hostname") == W_ALIAS]
    assert any(e["action"] == "allow" and e["dst_endpoint"]["ip"] == "127.0.0.1"
               for e in ev), str(r)


def test_alias_through_transparent_capture_and_policy_dns(world, loopback_services):
    r = world.run_sandbox(alias_policy(world),
                          sh(CURL + " --noproxy '*' http://host.openshell.internal:8080/t"))
    assert r.stdout == "loopback-service:8080:/t\n", str(r)


# A raw client dialing the proxy address itself (no DNS, nothing sent for the first
# 500 ms, so no name is peeked): the address exists only inside the sandbox, so the flow
# is for the host alias, decided by its declared ports.
RAW_TO_PROXY_ADDRESS = r"""
import os, socket, sys, time, urllib.parse
ip = urllib.parse.urlsplit(os.environ["HTTP_PROXY"]).hostname
s = socket.create_connection((ip, int(sys.argv[1])), timeout=10)
time.sleep(0.8)
s.sendall(b"GET /raw HTTP/1.0\r\nHost: x\r\n\r\n")
data = b""
while True:
    try:
        chunk = s.recv(4096)
    except OSError as e:
        print("error", e)
        break
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace").strip() or "empty")
"""


def test_raw_flow_to_the_proxy_address_is_the_host_alias(world, loopback_services):
    r = world.run_sandbox(alias_policy(world), [W.PYTHON, "-c", RAW_TO_PROXY_ADDRESS, "8080"])
    assert r.stdout.strip() == "loopback-service:8080:/raw", str(r)
    r = world.run_sandbox(alias_policy(world), [W.PYTHON, "-c", RAW_TO_PROXY_ADDRESS, "8081"])
    assert "loopback-service" not in r.stdout, str(r)


def test_undeclared_alias_port_is_denied(world, loopback_services):
    r = world.run_sandbox(alias_policy(world),
                          sh(CURL + " http://host.openshell.internal:8081/"))
    assert "loopback-service" not in r.stdout, str(r)
    assert '"policy_denied"' in r.stdout, str(r)


def test_wildcard_host_never_reaches_loopback(world, loopback_services):
    pol = world.policy_yaml([W.World.endpoint("*.openshell.internal", 8080, allowed_ips=None)])
    r = world.run_sandbox(pol, sh(CURL + " http://host.openshell.internal:8080/"))
    assert "loopback-service" not in r.stdout and "not declared" in r.stdout, str(r)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/", "http://localhost:8080/",
                                 "http://loop.allowed.test:8080/"])
def test_other_ways_to_loopback_stay_denied(world, loopback_services, url):
    host = url.split("/")[2].split(":")[0]
    pol = alias_policy(world, extra_eps=[W.World.endpoint(host, 8080, allowed_ips=None)])
    # NO_PROXY names loopback: make curl ask the proxy anyway.
    r = world.run_sandbox(pol, sh(CURL + " --noproxy '' " + url))
    assert "loopback-service" not in r.stdout, str(r)
    assert '"ssrf_denied"' in r.stdout, str(r)


# ---- the tool route -----------------------------------------------------------------

class Broker:
    """An HTTP server on a Unix socket that records what reaches it."""

    def __init__(self, path):
        self.path = path
        self.calls = []
        broker = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                broker.calls.append({"method": self.command, "path": self.path,
                                     "headers": [(k.lower(), v) for k, v in
                                                 self.headers.items()],
                                     "body": body.decode("utf-8", "replace")})
                out = json.dumps({"tool_result": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _answer

            def address_string(self):
                return "unix"

            def log_message(self, *a):
                pass

        class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = S(path, H)
        os.chmod(path, 0o600)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def header(self, call, name):
        return [v for k, v in call["headers"] if k == name.lower()]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        os.unlink(self.path)


@pytest.fixture
def broker(world):
    b = Broker(str(world.dir / ("broker-%d.sock" % time.monotonic_ns())))
    try:
        yield b
    finally:
        b.close()


TOOLS = "tools.openshell.internal"


def tool_policy(world):
    eps = [W.World.endpoint(TOOLS, port, allowed_ips=None, protocol="rest",
                            enforcement="enforce",
                            rules=[{"allow": {"method": "POST", "path": "/v1/tools/echo/**"}}])
           for port in (80, 443)]
    return world.policy_yaml(eps)


def tool_args(broker):
    return ["--tool-broker", "unix:" + broker.path, "--sandbox-id", SANDBOX_ID]


def test_tool_call_reaches_the_broker_with_identity(world, broker):
    r = world.run_sandbox(tool_policy(world), sh(
        CURL + " -X POST -H 'X-OpenShell-Sandbox-Id: spoofed' "
        "-H 'x-openshell-caller-binary: /bin/evil' -d '{\"a\":1}' "
        "http://tools.openshell.internal/v1/tools/echo/run"),
        extra_args=tool_args(broker))
    assert json.loads(r.stdout) == {"tool_result": "/v1/tools/echo/run"}, str(r)
    assert len(broker.calls) == 1, broker.calls
    call = broker.calls[0]
    assert call["body"] == '{"a":1}'
    assert broker.header(call, "X-OpenShell-Sandbox-Id") == [SANDBOX_ID], call
    binary = broker.header(call, "X-OpenShell-Caller-Binary")
    assert binary == [os.path.realpath("/usr/bin/curl")], call
    assert broker.header(call, "X-OpenShell-Caller-Pid")[0].isdigit(), call
    ev = [e for e in r.audit_lines if e.get("http_request", {}).get("url", {}).get("path")
          == "/v1/tools/echo/run"]
    assert ev and ev[0]["action"] == "allow" and ev[0]["firewall_rule"]["type"] == "tool", \
        str(r)


def test_tool_call_over_https_with_the_sandbox_ca(world, broker):
    r = world.run_sandbox(tool_policy(world), sh(
        CURL + " -X POST -H 'X-OpenShell-Sandbox-Id: spoofed' -d x "
        "https://tools.openshell.internal/v1/tools/echo/tls"),
        extra_args=tool_args(broker))
    assert json.loads(r.stdout) == {"tool_result": "/v1/tools/echo/tls"}, str(r)
    assert [broker.header(c, "X-OpenShell-Sandbox-Id") for c in broker.calls] == \
        [[SANDBOX_ID]], broker.calls


def test_denied_tool_path_gets_403_json_and_never_reaches_the_broker(world, broker):
    r = world.run_sandbox(tool_policy(world), sh(
        CURL + " -X POST -d x http://tools.openshell.internal/v1/tools/admin/wipe; echo; " +
        CURL + " -X POST -d x https://tools.openshell.internal/v1/tools/admin/wipe"),
        extra_args=tool_args(broker))
    bodies = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert len(bodies) == 2 and all(b["error"] == "policy_denied" for b in bodies), str(r)
    assert broker.calls == []
    denials = [e for e in r.audit_lines if e.get("action") == "deny" and
               e.get("http_request", {}).get("url", {}).get("path") == "/v1/tools/admin/wipe"]
    assert len(denials) == 2, str(r)


def test_discovery_is_forwarded(world, broker):
    r = world.run_sandbox(tool_policy(world),
                          sh(CURL + " http://tools.openshell.internal/v1/tools"),
                          extra_args=tool_args(broker))
    assert json.loads(r.stdout) == {"tool_result": "/v1/tools"}, str(r)
    assert [(c["method"], c["path"]) for c in broker.calls] == [("GET", "/v1/tools")]


@pytest.mark.parametrize("host", ["*.openshell.internal", "**.openshell.internal"])
def test_tool_route_matched_only_by_a_wildcard_never_reaches_the_broker(world, broker, host):
    pol = world.policy_yaml([W.World.endpoint(host, 80, allowed_ips=None, protocol="rest",
                                              enforcement="enforce",
                                              rules=[{"allow": {"method": "*",
                                                                "path": "/**"}}])])
    r = world.run_sandbox(pol, sh(CURL + " http://tools.openshell.internal/v1/tools; echo; " +
                                  CURL + " -X POST -d x http://tools.openshell.internal/v1/x"),
                          extra_args=tool_args(broker))
    bodies = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert len(bodies) == 2 and all(b["error"] == "policy_denied" for b in bodies), str(r)
    assert "not declared" in bodies[0]["detail"], str(r)
    assert broker.calls == []


def test_no_broker_is_503_json(world):
    r = world.run_sandbox(tool_policy(world), sh(
        CURL + " -X POST -d x http://tools.openshell.internal/v1/tools/echo/run"))
    assert json.loads(r.stdout)["error"] == "tool_broker_unavailable", str(r)


def test_bad_tool_broker_value_stops_the_start(world):
    r = world.run_sandbox(tool_policy(world), ["true"],
                          extra_args=["--tool-broker", "ftp://x"])
    assert r.returncode != 0 and "--tool-broker ftp://x" in r.stderr, str(r)
