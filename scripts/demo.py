"""A guided tour of openshell-sandbox in a throw-away test world.

Builds the same closed network the integration tests use (tests/integration/world.py:
two network namespaces, HTTP/HTTPS/DNS servers, a test CA; no packet can leave them),
then runs the real supervisor three times:
  1. an allowed HTTPS request through the proxy (shows the server's answer),
  2. a denied request (shows the 403 JSON, its reason and the suggested policy rule),
  3. a bypass attempt (`curl --noproxy '*'`) that the fence rejects at once.
Exit status 0 only if every step behaved as shown. Run as root: `make demo`.
"""

import json
import os
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

import world as W  # noqa: E402

TTY = sys.stdout.isatty()


def paint(code, text):
    return "\033[%sm%s\033[0m" % (code, text) if TTY else text


def title(n, text):
    print("\n" + paint("1;36", "== %s. %s" % (n, text)))


def show(label, text):
    print(paint("2", label))
    print(textwrap.indent(text.rstrip("\n"), "    "))


def ok(text):
    print(paint("32", "   OK   ") + text)


def bad(text):
    print(paint("1;31", "   FAIL ") + text)


def step_allowed(world, policy):
    title(1, "An allowed request: curl https://api.allowed.test/ through the proxy")
    argv = ["curl", "-sS", "--max-time", "20", "--cacert", world.ca_cert,
            "https://api.allowed.test/"]
    show("inside the sandbox:", " ".join(argv))
    r = world.run_sandbox(policy, argv)
    show("the world server answered:", r.stdout or "(nothing)")
    if (r.returncode == 0 and r.stdout.startswith("hello from api.allowed.test\n")
            and "peer=%s\n" % W.CONTAINER_IP in r.stdout):
        ok("exit %d, body from api.allowed.test (peer %s = the proxy)" % (r.returncode,
                                                                         W.CONTAINER_IP))
        return True
    bad("expected the world server's body; supervisor output:\n%s" % r)
    return False


def step_denied(world, policy):
    title(2, "A denied request: CONNECT denied.test:443 (not in the policy)")
    show("inside the sandbox:", "a raw CONNECT denied.test:443 to $HTTPS_PROXY")
    reply = world.sandbox_connect(policy, "denied.test", 443)
    print(paint("2", "the proxy answered: ") + "HTTP %s %s" % (reply.status, reply.reason))
    j = reply.json or {}
    if j:
        shown = {k: v for k, v in j.items() if k != "suggested_rule"}
        show("403 body:", json.dumps(shown, indent=2))
        if j.get("suggested_rule"):
            show("suggested rule (add it to the policy to allow this):",
                 str(j["suggested_rule"]))
    else:
        show("body:", reply.body or "(none)")
    if reply.status == 403 and j.get("error") == "policy_denied" and j.get("reason"):
        ok("denied with reason: %s" % j["reason"])
        return True
    bad("expected 403 policy_denied with a reason\n%s" % reply.result)
    return False


BYPASS = r'''
import json, subprocess, time
t = time.monotonic()
p = subprocess.run(["curl", "--noproxy", "*", "-sS", "--max-time", "10",
                    "http://198.51.100.10/"], capture_output=True, text=True)
print(json.dumps({"rc": p.returncode, "elapsed": time.monotonic() - t,
                  "out": p.stdout, "err": p.stderr.strip()}))
'''


def step_bypass(world, policy):
    title(3, "A bypass attempt: curl --noproxy '*' http://198.51.100.10/ (straight to the server)")
    show("inside the sandbox:", "curl --noproxy '*' -sS http://198.51.100.10/   (timed in the sandbox)")
    r = world.run_sandbox(policy, [W.PYTHON, "-c", BYPASS])
    try:
        o = r.json_stdout()
    except (AssertionError, ValueError):
        bad("the timing script printed nothing\n%s" % r)
        return False
    show("curl said:", "exit %d: %s" % (o["rc"], o["err"] or o["out"] or "(nothing)"))
    print(paint("2", "elapsed: ") + "%.1f ms" % (o["elapsed"] * 1000))
    blocked = "hello from" not in o["out"] and o["elapsed"] < 1.0
    if blocked and o["rc"] != 0:
        ok("the fence refused the direct connection in %.1f ms" % (o["elapsed"] * 1000))
        return True
    if blocked and "policy_denied" in o["out"]:
        ok("captured by the transparent proxy and denied by policy in %.1f ms"
           % (o["elapsed"] * 1000))
        return True
    bad("expected an immediate failure (under 1 s), got %s" % o)
    return False


def main():
    problem = W.environment_problem()
    if problem:
        print("demo: " + problem, file=sys.stderr)
        return 2
    if not os.access(W.SANDBOX_BIN, os.X_OK):
        print("demo: %s is not built (run `make`)" % W.SANDBOX_BIN, file=sys.stderr)
        return 2
    t0 = time.monotonic()
    print(paint("1", "openshell-sandbox demo"))
    world = W.World.create()
    results = []
    try:
        print("world %s: namespaces %s (servers) and %s (container), CA %s" % (
            world.id, world.world_ns, world.container_ns, world.ca_cert))
        policy = world.policy_yaml([("api.allowed.test", 443), ("plain.allowed.test", 80)])
        show("policy for every step:", policy)
        for step in (step_allowed, step_denied, step_bypass):
            try:
                results.append(step(world, policy))
            except Exception as e:  # a broken step is a failed step; keep touring
                bad("%s raised %s: %s" % (step.__name__, type(e).__name__, e))
                results.append(False)
        leftovers = world.wait_no_leftovers()
        if leftovers:
            bad("left behind: %s" % leftovers)
            results.append(False)
    finally:
        world.close()
    gone = not any(n.endswith(world.id) for n in os.listdir(W.NETNS_DIR))
    print("\n" + paint("2", "torn down: namespaces %s, servers stopped" %
                       ("removed" if gone else "NOT removed")))
    passed = all(results) and gone
    print(paint("1;32" if passed else "1;31", "demo %s (%d/%d steps as shown, %.1f s)" % (
        "passed" if passed else "FAILED", sum(results[:3]), 3, time.monotonic() - t0)))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
