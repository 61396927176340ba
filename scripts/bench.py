"""`make bench`: openshell-sandbox's proxy against the direct path and its peers.

Builds the bench world (scripts/bench_world.py: the integration tests' closed network
plus a client namespace, nginx in the world, the peers in the container namespace),
runs every scenario with the same clients against every contender, interleaved
(round 1: A B C ..., round 2: B C ... A, ...), and prints one table: per contender
the median and min-max over rounds, the ratio to the direct path and openshell's
ratio to each peer, all from this one run. Writes bench/results/<date>.json and .md.

Scenarios whose feature is not in the binary (found by probing it: --help text, or
what the proxy presents in a TLS handshake) print "not available".

Run as root: `bash scripts/bench.sh [--rounds N] [--only P1,P2] [--quick] [--profile]`.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_world as BW  # noqa: E402
from bench_world import W  # noqa: E402

REPO = BW.REPO
CLIENTS = str(Path(__file__).resolve().with_name("bench_clients.py"))
RESULTS = REPO / "bench" / "results"
HEY = "/usr/bin/hey"
NOT_AVAILABLE = "not available"
KILL_RETRIES = 2

# Scenario sizes (the whole run must stay well under 20 minutes on 2 cores).
P1_PATH = BW.BIG_PATH
P2_CONCURRENCY = 64
P2_SECONDS = 5
P3_SECONDS = 4
LAT_REQUESTS = 300
P4_TUNNELS = 10000
P6_RUNS = 20
P7_RUNS = 10
P5_RUNS = 5
P5_TIMEOUT_S = 3
WS_ROUND_TRIPS = 500

TARGETS = {
    "P1": "openshell >= 0.90 x direct; >= 1.5 x squid and tinyproxy",
    "P2": "openshell >= 3 x squid; added p50 latency vs direct <= 150 us",
    "P3": "openshell >= 2 x squid-bump; >= 20 x mitmproxy; added p50 TTFB <= 1 ms",
    "P4": "<= 8 KiB RSS per idle tunnel (10,000 tunnels)",
    "P5": "<= 50 ms from policy change to the first request decided by it",
    "P6": "<= 50 ms start to exit (ratio to unshare -n true shown)",
    "P7": "<= 1.0 x OpenSSH sshd on loopback",
    "P8": "<= +100 us p50 WebSocket echo round trip vs direct",
}


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ---- statistics ---------------------------------------------------------------------------
def summary(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "n": len(vals)}


class Row:
    """One contender's result in one measurement (metric) of one scenario."""

    def __init__(self, scenario, metric, contender, unit, higher_better, values=None,
                 note="", errors=0):
        self.scenario, self.metric, self.contender = scenario, metric, contender
        self.unit, self.higher_better = unit, higher_better
        self.values = list(values or [])
        self.note, self.errors = note, errors
        self.vs_direct = None      # ratio (throughput) or added amount (latency/time)
        self.vs_peers = {}         # peer -> openshell's factor against it (>1: openshell better)

    @property
    def stats(self):
        return summary(self.values)

    def to_json(self):
        return {"scenario": self.scenario, "metric": self.metric, "contender": self.contender,
                "unit": self.unit, "higher_is_better": self.higher_better,
                "values": self.values, **self.stats, "vs_direct": self.vs_direct,
                "openshell_vs": self.vs_peers, "errors": self.errors, "note": self.note}


def compute_ratios(rows):
    """Fills vs_direct and openshell's factor against each peer, per (scenario, metric)."""
    groups = {}
    for r in rows:
        groups.setdefault((r.scenario, r.metric), []).append(r)
    for grp in groups.values():
        by = {r.contender: r for r in grp}
        direct = by.get("direct")
        os_row = by.get("openshell")
        for r in grp:
            m = r.stats["median"]
            if direct is not None and r is not direct and m is not None:
                dm = direct.stats["median"]
                if dm:
                    r.vs_direct = m / dm if r.higher_better else m - dm
        if os_row is None or os_row.stats["median"] is None:
            continue
        om = os_row.stats["median"]
        for r in grp:
            if r.contender in ("direct", "openshell") or not r.stats["median"]:
                continue
            pm = r.stats["median"]
            os_row.vs_peers[r.contender] = om / pm if r.higher_better else (pm / om if om else None)


# ---- running clients ------------------------------------------------------------------
class Bench:
    def __init__(self, args):
        self.args = args
        self.bw = BW.BenchWorld(log=log)
        self.rows = []
        self.na = {}           # scenario -> why it is not available
        self.features = {}
        self.help_text = ""
        self.info = {}
        self.verdicts = {}
        self.skipped = set()
        self.deaths = []
        self.killed_clients = 0
        self.profiles = []
        self.stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H%M")

    def env(self):
        return self.bw.world.base_env({"OSB_HOSTS": self.bw.world.hosts_file})

    def run_client(self, full, timeout, env=None):
        """Runs a client; a client SIGKILLed from outside (see BenchWorld.client_argv) is
        retried, at most KILL_RETRIES times."""
        for attempt in range(KILL_RETRIES + 1):
            p = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=timeout, env={**self.env(), **(env or {})},
                               cwd=str(self.bw.dir))
            if p.returncode != -signal.SIGKILL:
                return p
            self.killed_clients += 1
            log("a client was SIGKILLed from outside the harness; retrying (%s)" % full[3:6])
        return p

    def client(self, argv, timeout=120, ns="client", env=None):
        full = (self.bw.client_argv if ns == "client" else self.bw.container_net_argv)(argv)
        p = self.run_client(full, timeout, env)
        lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
        try:
            return json.loads(lines[-1])
        except (IndexError, ValueError):
            raise W.WorldError("client %s printed no JSON (rc=%d): %s %s" % (
                argv[:3], p.returncode, p.stdout[-500:], p.stderr[-1500:])) from None

    def py(self, *args, **kw):
        return self.client([W.PYTHON, CLIENTS, *map(str, args)], **kw)

    def hey(self, url, proxy, seconds, concurrency, keepalive):
        argv = [HEY, "-z", "%ds" % seconds, "-c", str(concurrency), "-t", "10"]
        if not keepalive:
            argv.append("-disable-keepalive")
        if proxy:
            argv += ["-x", "http://" + proxy]
        if not proxy:  # the direct path: no proxy resolves the name for us
            host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
            url = url.replace("://" + host, "://" + self.bw.address(host), 1)
        argv.append(url)
        p = self.run_client(self.bw.client_argv(argv), seconds + 60)
        out = p.stdout
        m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
        ok = sum(int(n) for n in re.findall(r"\[200\]\s+(\d+) responses", out))
        other = sum(int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out)
                    if c != "200")
        errs = 0
        if "Error distribution:" in out:
            errs = sum(int(n) for n in re.findall(
                r"^\s+\[(\d+)\]\s", out.split("Error distribution:", 1)[1], re.M))
        if m is None or ok == 0:
            return None, errs + other, out[-800:] + p.stderr[-400:], 0
        # hey's Requests/sec counts every response; count only the 200s.
        rate = float(m.group(1)) * ok / max(1, ok + other)
        return rate, errs + other, "", ok

    def sandbox_check(self, scenario):
        """After a measurement through openshell: if the supervisor died, say so (once per
        scenario, with its exit status and stderr tail) and start a fresh one."""
        h = self.bw.sandbox
        if h is None or h.proc.poll() is None:
            return None
        h.kill_all()  # its workload may still hold the sandbox (and a leaked listener)
        rc = h.proc.returncode
        tail = h.stderr()[-300:].strip().replace("\n", " | ")
        how = ("killed by signal %d" % -rc if rc < 0 else
               "exit status %d: its workload died of signal %d" % (rc, rc - 128) if rc > 128
               else "exit status %d" % rc)
        why = "supervisor ended during %s (%s); stderr: %s" % (scenario, how, tail or "-")
        log(why)
        self.deaths.append(why)
        self.bw.sandbox = None
        self.bw.start_sandbox(extra_args=self.sandbox_args())
        return why

    # ---- contenders ---------------------------------------------------------------------
    def proxies(self, kind):
        """[(name, proxy address or None)] for a scenario kind: tunnel / mitm. The
        openshell entry is a placeholder resolved by addr() at use (it may restart)."""
        if kind == "tunnel":
            return [("direct", None), ("openshell", "openshell"),
                    ("squid", "%s:%d" % (BW.PEER_IP, BW.SQUID_PORT)),
                    ("tinyproxy", "%s:%d" % (BW.PEER_IP, BW.TINYPROXY_PORT)),
                    ("floor", "%s:%d" % (BW.PEER_IP, BW.FLOOR_PORT)),
                    ("floor-sandbox", "%s:%d" % (BW.SANDBOX_FLOOR_IP, BW.FLOOR_SANDBOX_PORT))]
        out = [("direct", None)]
        if self.features.get("interception"):
            out.append(("openshell", "openshell"))
        out += [("squid-bump", "%s:%d" % (BW.PEER_IP, BW.SQUID_BUMP_PORT)),
                ("mitmproxy", "%s:%d" % (BW.PEER_IP, BW.MITM_PORT)),
                ("floor-tls", "%s:%d" % (BW.PEER_IP, BW.FLOOR_TLS_PORT)),
                ("floor-tls-sandbox", "%s:%d" % (BW.SANDBOX_FLOOR_IP,
                                                 BW.FLOOR_TLS_SANDBOX_PORT))]
        return out

    def proxy_pid(self, name):
        """The process whose CPU time is the proxy's (None for the direct path)."""
        if name == "openshell":
            return self.bw.sandbox.pid if self.bw.sandbox else None
        p = self.bw.procs.get({"squid-bump": "squid"}.get(name, name))
        return p.pid if p is not None else None

    def cpu_s(self, name):
        """utime + stime of the proxy process (all its threads, live and exited), in s."""
        pid = self.proxy_pid(name)
        if pid is None:
            return None
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    @staticmethod
    def machine_cpu():
        """(busy CPU seconds of the whole machine, monotonic seconds) from /proc/stat:
        user + nice + system + irq + softirq + steal, every process and the kernel's
        own work (softirq TCP processing is charged wherever it runs)."""
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
        return busy / os.sysconf("SC_CLK_TCK"), time.monotonic()

    @staticmethod
    def machine_delta(m0, m1):
        """(busy CPU seconds, fraction of all cores busy) between two machine_cpu()."""
        busy, wall = m1[0] - m0[0], m1[1] - m0[1]
        return busy, (busy / (wall * (os.cpu_count() or 1)) if wall > 0 else None)

    def addr(self, proxy):
        """The address to use now; restarts a dead peer first (openshell: see after())."""
        if proxy and proxy != "openshell":
            port = int(proxy.rsplit(":", 1)[1])
            name = {BW.SQUID_PORT: "squid", BW.SQUID_BUMP_PORT: "squid",
                    BW.TINYPROXY_PORT: "tinyproxy", BW.MITM_PORT: "mitmproxy",
                    BW.FLOOR_PORT: "floor", BW.FLOOR_TLS_PORT: "floor-tls",
                    BW.FLOOR_SANDBOX_PORT: "floor-sandbox",
                    BW.FLOOR_TLS_SANDBOX_PORT: "floor-tls-sandbox"}.get(port)
            if name:
                self.bw.ensure_alive(name)
        return self.bw.proxy_addr if proxy == "openshell" else proxy

    def after(self, scenario, name):
        """Call after each measurement: '' or why the openshell measurement is void."""
        if name != "openshell":
            return ""
        return self.sandbox_check(scenario) or ""

    def rounds(self, contenders):
        """Interleaved order: each round rotates the list by one."""
        n = self.args.rounds
        for i in range(n):
            k = i % len(contenders)
            yield i, contenders[k:] + contenders[:k]

    # ---- feature probes -------------------------------------------------------------------
    def probe_help(self):
        p = subprocess.run([self.bw.world.sandbox_bin, "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=10)
        self.help_text = h = p.stdout
        self.features["ssh_socket"] = "--ssh-socket-path" in h
        self.features["upstream_ca"] = "--upstream-ca" in h

    def probe_features(self):
        # Interception: what certificate does the proxy present for an auto-TLS endpoint?
        r = self.py("tlsprobe", self.bw.proxy_addr, BW.HOST_MITM, BW.HTTPS_PORT)
        issuer = r.get("issuer") or ""
        world_ca = "osworld test CA " + self.bw.world.id
        self.features["interception"] = bool(issuer) and world_ca not in issuer
        self.features["tls_probe"] = r
        log("features: %s" % {k: v for k, v in self.features.items() if k != "tls_probe"})

    # ---- P1 -------------------------------------------------------------------------------
    def p1(self):
        conts = self.proxies("tunnel")
        res = {c: [] for c, _ in conts}
        cpu = {c: [] for c, _ in conts}
        mcpu = {c: [] for c, _ in conts}
        mbusy = {c: [] for c, _ in conts}
        errors = {c: 0 for c, _ in conts}
        # Warm the page cache with the sparse file once (direct: the fastest path).
        self.py("bulk", "-", BW.HOST_TUNNEL, BW.HTTP_PORT, P1_PATH, timeout=300)
        for i, order in self.rounds(conts):
            for name, proxy in order:
                c0 = self.cpu_s(name)
                m0 = self.machine_cpu()
                r = self.py("bulk", self.addr(proxy) or "-", BW.HOST_TUNNEL, BW.HTTP_PORT,
                            P1_PATH, timeout=300)
                m1 = self.machine_cpu()
                c1 = self.cpu_s(name)
                died = self.after("P1", name)
                if died or "error" in r or r["bytes"] != r["want"]:
                    errors[name] += 1
                    log("P1 %s: %s" % (name, r))
                    continue
                mibs = r["bytes"] / r["seconds"] / (1 << 20)
                res[name].append(mibs)
                # The client's own start-up is inside the window too; it is the same
                # for every contender.
                busy, frac = self.machine_delta(m0, m1)
                mcpu[name].append(busy * 1000.0 / (r["bytes"] / (1 << 30)))
                if frac is not None:
                    mbusy[name].append(100.0 * frac)
                per = None
                if c0 is not None and c1 is not None:
                    per = (c1 - c0) * 1000.0 / (r["bytes"] / (1 << 30))
                    cpu[name].append(per)
                log("P1 round %d %-10s %8.0f MiB/s%s" % (
                    i + 1, name, mibs, "" if per is None else ", proxy CPU %.0f ms/GiB" % per))
        for name, _ in conts:
            self.rows.append(Row("P1", "1 GiB through one tunnel", name, "MiB/s", True,
                                 res[name], errors=errors[name]))
        for name, _ in conts:
            if cpu[name]:
                self.rows.append(Row("P1", "proxy CPU per GiB", name, "ms", False, cpu[name]))
        for name, _ in conts:
            self.rows.append(Row("P1", "machine CPU per GiB (all processes and the kernel)",
                                 name, "ms", False, mcpu[name]))
        for name, _ in conts:
            self.rows.append(Row("P1", "machine busy during the download", name,
                                 "% of all cores", True, mbusy[name]))

    # ---- request-rate helper (P2, P3) ---------------------------------------------------------
    def rate_rows(self, scenario, metric, kind, host, keepalive, seconds):
        conts = self.proxies(kind)
        url = "https://%s:%d%s" % (host, BW.HTTPS_PORT, BW.SMALL_PATH)
        res = {c: [] for c, _ in conts}
        cpu = {c: [] for c, _ in conts}
        mcpu = {c: [] for c, _ in conts}
        mbusy = {c: [] for c, _ in conts}
        errors = {c: 0 for c, _ in conts}
        notes = {c: "" for c, _ in conts}
        for name, proxy in conts:   # warm-up: leaf caches, DNS caches, page cache
            self.hey(url, self.addr(proxy), 1, 8, keepalive)
            self.after(scenario, name)
        for i, order in self.rounds(conts):
            for name, proxy in order:
                c0 = self.cpu_s(name)
                m0 = self.machine_cpu()
                rate, errs, why, n_ok = self.hey(url, self.addr(proxy), seconds,
                                                 P2_CONCURRENCY, keepalive)
                m1 = self.machine_cpu()
                c1 = self.cpu_s(name)
                died = self.after(scenario, name)
                errors[name] += errs
                if died:
                    notes[name] = died
                    continue
                if rate is None:
                    notes[name] = "no successful request: " + why.strip().replace("\n", " ")[-200:]
                    log("%s %s: %s" % (scenario, name, notes[name]))
                    continue
                res[name].append(rate)
                busy, frac = self.machine_delta(m0, m1)
                if n_ok:
                    mcpu[name].append(busy * 1e6 / n_ok)
                if frac is not None:
                    mbusy[name].append(100.0 * frac)
                per = (c1 - c0) * 1e6 / n_ok if c0 is not None and c1 is not None else None
                if per is not None:
                    cpu[name].append(per)
                log("%s round %d %-10s %8.0f req/s (%d errors)%s" % (
                    scenario, i + 1, name, rate, errs,
                    "" if per is None else ", proxy CPU %.0f us/request" % per))
        for name, _ in conts:
            self.rows.append(Row(scenario, metric, name, "req/s", True, res[name],
                                 note=notes[name], errors=errors[name]))
        for name, _ in conts:
            if cpu[name]:
                self.rows.append(Row(scenario, "proxy CPU per request: " + metric, name,
                                     "us", False, cpu[name]))
        for name, _ in conts:
            if mcpu[name]:
                self.rows.append(Row(scenario, "machine CPU per request: " + metric, name,
                                     "us", False, mcpu[name]))
        for name, _ in conts:
            if mbusy[name]:
                self.rows.append(Row(scenario, "machine busy: " + metric, name,
                                     "% of all cores", True, mbusy[name]))

    PHASES = (("tcp_us", "TCP connect"), ("tunnel_us", "CONNECT round trip"),
              ("tls_us", "TLS handshake"), ("request_us", "request to last byte"))

    def latency_rows(self, scenario, metric, kind, host, keepalive, field):
        conts = self.proxies(kind)
        res = {c: [] for c, _ in conts}
        phase = {(c, k): [] for c, _ in conts for k, _ in self.PHASES}
        errors = {c: 0 for c, _ in conts}
        notes = {c: "" for c, _ in conts}
        for name, proxy in conts:
            self.py("latency", self.addr(proxy) or "-", host, BW.HTTPS_PORT, BW.SMALL_PATH, 1,
                    20, int(keepalive))
            self.after(scenario, name)
        for i, order in self.rounds(conts):
            for name, proxy in order:
                r = self.py("latency", self.addr(proxy) or "-", host, BW.HTTPS_PORT,
                            BW.SMALL_PATH, 1, LAT_REQUESTS, int(keepalive), timeout=300)
                died = self.after(scenario, name)
                if died or "error" in r:
                    errors[name] += LAT_REQUESTS
                    notes[name] = died or r["error"]
                    continue
                if r["last_error"]:
                    notes[name] = r["last_error"]
                errors[name] += r["errors"]
                samples = r[field][1:] if keepalive else r[field]  # keep-alive: skip setup
                if samples:
                    res[name].append(statistics.median(samples))
                for k, _ in self.PHASES:
                    if not keepalive and r.get(k):
                        phase[(name, k)].append(statistics.median(r[k]))
        for name, _ in conts:
            self.rows.append(Row(scenario, metric, name, "us", False, res[name],
                                 note=notes[name], errors=errors[name]))
        for k, label in self.PHASES:  # where a new connection's time goes
            for name, _ in conts:
                if phase[(name, k)]:
                    self.rows.append(Row(scenario, "%s, phase: %s" % (metric, label), name,
                                         "us", False, phase[(name, k)]))

    # ---- P2 -------------------------------------------------------------------------------
    def p2(self):
        self.rate_rows("P2", "new tunnel per request, c=64", "tunnel", BW.HOST_PASS, False,
                       P2_SECONDS)
        self.latency_rows("P2", "p50 latency, new tunnel, c=1", "tunnel", BW.HOST_PASS,
                          False, "total_us")

    # ---- P3 -------------------------------------------------------------------------------
    def p3(self):
        if not self.features.get("interception"):
            self.na["P3"] = ("the proxy relays TLS untouched (it presented the world's "
                             "certificate: %s); peers measured for reference" %
                             (self.features["tls_probe"].get("issuer") or
                              self.features["tls_probe"].get("error")))
        self.rate_rows("P3", "intercepted, new connection per request, c=64", "mitm",
                       BW.HOST_MITM, False, P3_SECONDS)
        self.rate_rows("P3", "intercepted, keep-alive, c=64", "mitm", BW.HOST_MITM, True,
                       P3_SECONDS)
        self.latency_rows("P3", "p50 TTFB, new connection, c=1", "mitm", BW.HOST_MITM,
                          False, "ttfb_us")
        self.latency_rows("P3", "p50 TTFB, keep-alive, c=1", "mitm", BW.HOST_MITM, True,
                          "ttfb_us")

    # ---- P4 -------------------------------------------------------------------------------
    def rss_kib(self, pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def nofile_limit(self, pid):
        """The soft RLIMIT_NOFILE of pid, or None."""
        try:
            with open("/proc/%d/limits" % pid) as f:
                for line in f:
                    if line.startswith("Max open files"):
                        return int(line.split()[3])
        except (OSError, ValueError, IndexError):
            pass
        return None

    def p4_one(self, name, proxy, pid, n):
        before = self.rss_kib(pid)
        nofile = self.nofile_limit(pid)
        argv = self.bw.client_argv([W.PYTHON, CLIENTS, "tunnels", proxy, BW.HOST_TUNNEL,
                                    BW.HTTP_PORT, n])
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=self.env())
        try:
            line = p.stdout.readline().split()
            time.sleep(1.0)  # let the proxy finish bookkeeping of the last tunnels
            after = self.rss_kib(pid)
            p.stdin.close()
            rest = p.stdout.read()
            p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        ok = int(line[1]) if len(line) == 3 and line[0] == "READY" else 0
        try:
            detail = json.loads(rest.strip().splitlines()[-1])
        except (IndexError, ValueError):
            detail = {"raw": rest[-300:]}
        per = (after - before) / ok if ok and before is not None and after is not None else None
        note = "%d of %d tunnels established; RSS %s -> %s KiB; statuses %s" % (
            ok, n, before, after, detail.get("statuses"))
        if nofile is not None and nofile < 2 * n + 64:
            # Each tunnel holds two descriptors (client, upstream) in the proxy.
            note += "; the proxy's RLIMIT_NOFILE is %d: room for about %d tunnels" % (
                nofile, (nofile - 64) // 2)
        log("P4 %s: %s" % (name, note))
        return per, note, n - ok

    def p4(self):
        n = self.args.tunnels
        per, note, failed = self.p4_one("openshell", self.bw.proxy_addr,
                                        self.bw.sandbox.pid, n)
        died = self.after("P4", "openshell")
        if died:
            per, note = None, died
        self.rows.append(Row("P4", "RSS per idle tunnel", "openshell", "KiB", False,
                             [per] if per is not None else [], note=note, errors=failed))
        squid = self.bw.procs.get("squid")
        if squid is not None:
            proxy = self.addr("%s:%d" % (BW.PEER_IP, BW.SQUID_PORT))  # restarts a dead squid
            per, note, failed = self.p4_one("squid", proxy, self.bw.procs["squid"].pid, n)
            self.rows.append(Row("P4", "RSS per idle tunnel", "squid", "KiB", False,
                                 [per] if per is not None else [], note=note, errors=failed))

    # ---- P5 -------------------------------------------------------------------------------
    def p5(self):
        """Hot reload, probed by behaviour: the policy file is replaced by one that also
        allows HOST_RELOAD; a proxy without reload keeps answering 403."""
        d = self.bw.dir / "p5"
        d.mkdir(exist_ok=True)
        live = d / "policy.yaml"
        old, new = d / "old.yaml", d / "new.yaml"
        old.write_text(self.bw.policy_yaml())
        new.write_text(self.bw.policy_yaml(extra_hosts=[BW.HOST_RELOAD]))
        shutil.copy(old, live)
        self.bw.stop_sandbox()
        self.bw.start_sandbox(extra_args=self.sandbox_args(), policy_path=live)
        vals, errors, last = [], 0, None
        try:
            for i in range(P5_RUNS):
                shutil.copy(old, d / "back.yaml")
                os.replace(d / "back.yaml", live)
                time.sleep(0.5)   # let the old policy take effect again (debounce, reload)
                src = d / "next.yaml"
                shutil.copy(new, src)
                r = self.py("reload", self.bw.proxy_addr, BW.HOST_RELOAD, BW.HTTPS_PORT,
                            P5_TIMEOUT_S, src, live)
                last = r
                if r.get("status") == 200:
                    vals.append(r["seconds"] * 1000.0)
                else:
                    errors += 1
                    log("P5 run %d: %s" % (i + 1, r))
                    if not vals:
                        break   # never reloaded: the feature is not there
        finally:
            self.after("P5", "openshell")
            self.bw.stop_sandbox()
            self.bw.start_sandbox(extra_args=self.sandbox_args())
        if not vals:
            self.na["P5"] = ("the proxy still answered %s for a host the new policy allows, "
                             "%d s after the policy file was replaced" % (
                                 (last or {}).get("status"), P5_TIMEOUT_S))
            return
        self.rows.append(Row("P5", "policy change -> first request under it", "openshell",
                             "ms", False, vals, errors=errors,
                             note="file replaced atomically (rename), CONNECT polled every 1 ms"))

    # ---- P6 -------------------------------------------------------------------------------
    def p6(self):
        tls = self.bw.dir / "p6-tls"   # never the machine's /etc/openshell-tls
        r = self.py("startup", P6_RUNS, self.bw.world.sandbox_bin, "--", "--", "/bin/true",
                    ns="container", timeout=600,
                    env={"OPENSHELL_PROXY_TLS_DIR": str(tls)})
        if "error" in r:
            self.na["P6"] = r["error"]
            return
        note = "" if r["sandbox_rc"] == [0] else "sandbox exit codes %s" % r["sandbox_rc"]
        self.rows.append(Row("P6", "start to exit", "unshare -n true", "ms", False,
                             [v / 1000 for v in r["unshare_us"]]))
        self.rows.append(Row("P6", "start to exit", "openshell", "ms", False,
                             [v / 1000 for v in r["sandbox_us"]], note=note))

    # ---- P7 -------------------------------------------------------------------------------
    def sandbox_args(self):
        args = []
        if self.features.get("upstream_ca"):  # interception: trust the world's servers
            args += ["--upstream-ca", self.bw.world.ca_cert]
        if self.features.get("ssh_socket"):
            args += ["--ssh-socket-path", str(self.bw.dir / "ssh" / "ssh.sock")]
        return args

    def p7(self):
        if not self.features.get("ssh_socket"):
            self.na["P7"] = "no --ssh-socket-path in --help"
            return
        key = self.bw.start_sshd()
        sock = self.bw.dir / "ssh" / "ssh.sock"
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        # The same key exchange for both: OpenSSH 9.2 prefers sntrup761x25519, whose key
        # generation alone costs tens of ms here, and libssh does not offer it.
        common = ["/usr/bin/ssh", "-F", "/dev/null", "-i", str(key), "-o", "BatchMode=yes",
                  "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                  "-o", "LogLevel=ERROR", "-o", "KexAlgorithms=curve25519-sha256"]
        a = common + ["-o", "ProxyCommand=/usr/bin/socat - UNIX-CONNECT:%s" % sock,
                      "sandbox", "true"]
        b = common + ["-p", str(BW.SSHD_PORT), "root@127.0.0.1", "true"]
        r = self.py("ssh", P7_RUNS, json.dumps(a), json.dumps(b), ns="container", timeout=600)
        if "error" in r:
            self.na["P7"] = r["error"]
            return
        self.rows.append(Row("P7", "ssh ... true", "openshell", "ms", False,
                             [v / 1000 for v in r["a_us"]],
                             note="" if r["a_rc"] == [0] else "exit codes %s" % r["a_rc"]))
        self.rows.append(Row("P7", "ssh ... true", "sshd", "ms", False,
                             [v / 1000 for v in r["b_us"]],
                             note="" if r["b_rc"] == [0] else "exit codes %s" % r["b_rc"]))

    # ---- P8 -------------------------------------------------------------------------------
    def p8(self):
        """WebSocket echo round trip (the world's /ws over TLS) through interception."""
        if not self.features.get("interception"):
            self.na["P8"] = "needs TLS interception (not in the binary); peers not measured"
            return
        conts = self.proxies("mitm")
        res = {c: [] for c, _ in conts}
        errors = {c: 0 for c, _ in conts}
        notes = {c: "" for c, _ in conts}
        for i, order in self.rounds(conts):
            for name, proxy in order:
                r = self.py("ws", self.addr(proxy) or "-", BW.HOST_WS, BW.WS_PORT, BW.WS_PATH,
                            WS_ROUND_TRIPS, timeout=120)
                died = self.after("P8", name)
                if died or "error" in r:
                    errors[name] += 1
                    notes[name] = died or r["error"]
                    log("P8 %s: %s" % (name, notes[name]))
                    continue
                res[name].append(statistics.median(r["rtt_us"]))
        for name, _ in conts:
            self.rows.append(Row("P8", "p50 WebSocket echo round trip", name, "us", False,
                                 res[name], note=notes[name], errors=errors[name]))

    # ---- verdicts -----------------------------------------------------------------------
    def row(self, scenario, metric_prefix, contender):
        for r in self.rows:
            if (r.scenario == scenario and r.metric.startswith(metric_prefix)
                    and r.contender == contender):
                return r
        return None

    def ceiling_note(self, scenario, metric, peer, factor):
        """When factor x peer's rate exceeds the direct path's (no proxy at all on the
        same hops, same client and server), no proxy can meet the target here."""
        d, p = self.row(scenario, metric, "direct"), self.row(scenario, metric, peer)
        if not d or not p or d.stats["median"] is None or p.stats["median"] is None:
            return ""
        want = factor * p.stats["median"]
        if want <= d.stats["median"]:
            return ""
        return (" (%g x %s = %.0f req/s is above the direct path's %.0f req/s: beyond "
                "this machine for any proxy)" % (factor, peer, want, d.stats["median"]))

    FLOOR_LABELS = {"floor": "the floor relay", "floor-tls": "the TLS floor"}

    def floor_note(self, scenario, metric, want, latency=False, floor="floor"):
        """What a floor relay (bench/probes: the least such a proxy does) itself
        reaches against the direct path on the peers' path, and whether it misses
        the target too: the part of the gap no such proxy avoids."""
        f = self.row(scenario, metric, floor)
        if not f or f.vs_direct is None:
            return ""
        missed = f.vs_direct > want if latency else f.vs_direct < want
        value = ("%+.0f us" if latency else "%.2f x direct") % f.vs_direct
        return " (%s itself: %s%s)" % (self.FLOOR_LABELS[floor], value,
                                       ", missing the target too" if missed else "")

    def own_path_note(self, scenario, metric, floor):
        """openshell's added latency against the same floor relay on openshell's own
        path (listening in the sandbox namespace, its clients there): what is left is
        openshell's code, not the path. (Rates: fmt_peers shows the ratio.)"""
        o, f = self.row(scenario, metric, "openshell"), self.row(scenario, metric, floor)
        if not o or not f or o.stats["median"] is None or not f.stats["median"]:
            return ""
        return "; openshell %+.0f us against %s (its own path)" % (
            o.stats["median"] - f.stats["median"], floor)

    def floor_tls_rates(self, metric):
        """P3: what the TLS floor (both handshakes and SSL_read/SSL_write, nothing
        else) itself reaches against squid-bump and mitmproxy, and whether that meets
        openshell's target (2 x squid-bump, 20 x mitmproxy) too."""
        f = self.row("P3", metric, "floor-tls")
        if not f or not f.stats["median"]:
            return ""
        ratios, meets = [], True
        for peer, factor in (("squid-bump", 2), ("mitmproxy", 20)):
            p = self.row("P3", metric, peer)
            if p and p.stats["median"]:
                ratio = f.stats["median"] / p.stats["median"]
                ratios.append("%.2fx %s" % (ratio, peer))
                meets = meets and ratio >= factor
        if not ratios:
            return ""
        return " (the TLS floor itself: %s%s)" % (", ".join(ratios),
                                                  "" if meets else ", below the target too")

    def verdict(self):
        v = {}

        def check(key, ok, text):
            v[key] = {"pass": bool(ok) if ok is not None else None, "detail": text}

        o = self.row("P1", "1 GiB", "openshell")
        if o and o.vs_direct is not None:
            vs = o.vs_peers
            ok = (o.vs_direct >= 0.90 and vs.get("squid", 0) >= 1.5
                  and vs.get("tinyproxy", 0) >= 1.5)
            check("P1", ok, "%.2f x direct%s, %s" % (
                o.vs_direct, self.floor_note("P1", "1 GiB", 0.90), fmt_peers(vs)))
        o = self.row("P2", "new tunnel", "openshell")
        lat = self.row("P2", "p50 latency", "openshell")
        if o and lat and lat.vs_direct is not None:
            ok = o.vs_peers.get("squid", 0) >= 3 and lat.vs_direct <= 150
            text = "%s; +%.0f us p50%s%s" % (
                fmt_peers(o.vs_peers), lat.vs_direct,
                self.floor_note("P2", "p50 latency", 150, True),
                self.own_path_note("P2", "p50 latency", "floor-sandbox"))
            text += self.ceiling_note("P2", "new tunnel", "squid", 3)
            check("P2", ok, text)
        if "P3" not in self.na and self.row("P3", "intercepted", "openshell"):
            parts, ok = [], True
            for m in ("intercepted, new", "intercepted, keep"):
                o = self.row("P3", m, "openshell")
                if o is None:
                    ok = None
                    continue
                ok = ok and o.vs_peers.get("squid-bump", 0) >= 2 and \
                    o.vs_peers.get("mitmproxy", 0) >= 20
                parts.append("%s: %s%s%s%s" % (
                    m, fmt_peers(o.vs_peers), self.floor_tls_rates(m),
                    self.ceiling_note("P3", m, "squid-bump", 2),
                    self.ceiling_note("P3", m, "mitmproxy", 20)))
            t = self.row("P3", "p50 TTFB, new", "openshell")
            if t and t.vs_direct is not None:
                ok = ok and t.vs_direct <= 1000
                parts.append("+%.0f us TTFB%s%s" % (
                    t.vs_direct, self.floor_note("P3", "p50 TTFB, new", 1000, True, "floor-tls"),
                    self.own_path_note("P3", "p50 TTFB, new", "floor-tls-sandbox")))
            check("P3", ok, "; ".join(parts))
        o = self.row("P4", "RSS", "openshell")
        if o and o.stats["median"] is not None:
            limit = re.search(r"RLIMIT_NOFILE is \d+", o.note or "")
            check("P4", o.stats["median"] <= 8 and o.errors == 0,
                  "%.2f KiB per tunnel%s%s" % (o.stats["median"], "; %d tunnels refused" %
                                               o.errors if o.errors else "",
                                               " (the proxy's %s)" % limit.group(0)
                                               if o.errors and limit else ""))
        o = self.row("P5", "policy", "openshell")
        if o and o.stats["median"] is not None:
            check("P5", o.stats["median"] <= 50, "%.1f ms" % o.stats["median"])
        o, u = self.row("P6", "start", "openshell"), self.row("P6", "start", "unshare -n true")
        if o and u and o.stats["median"] is not None:
            check("P6", o.stats["median"] <= 50 and not o.note,
                  "%.1f ms (%.1f x unshare -n true)" % (o.stats["median"],
                                                       o.stats["median"] / u.stats["median"]))
        o = self.row("P8", "p50 WebSocket", "openshell")
        if o and o.vs_direct is not None:
            check("P8", o.vs_direct <= 100, "%+.0f us p50 vs direct%s%s; %s" % (
                o.vs_direct, self.floor_note("P8", "p50 WebSocket", 100, True, "floor-tls"),
                self.own_path_note("P8", "p50 WebSocket", "floor-tls-sandbox"),
                fmt_peers(o.vs_peers)))
        o, s = self.row("P7", "ssh", "openshell"), self.row("P7", "ssh", "sshd")
        if o and s and o.stats["median"] is not None:
            ratio = o.stats["median"] / s.stats["median"]
            check("P7", ratio <= 1.0 and not o.note, "%.2f x sshd" % ratio)
        for k in TARGETS:
            if k in self.na and k not in v:
                v[k] = {"pass": None, "detail": NOT_AVAILABLE + ": " + self.na[k]}
            elif k not in v:
                v[k] = {"pass": None, "detail": "not run" if k in self.skipped else
                        "no result"}
        self.verdicts = v

    # ---- the run ----------------------------------------------------------------------
    def run(self):
        t0 = time.monotonic()
        log("building the bench world")
        self.bw.build()
        log("world %s; client netns %s" % (self.bw.world.id, self.bw.client_ns))
        self.probe_help()
        if self.features.get("ssh_socket"):
            (self.bw.dir / "ssh").mkdir(mode=0o700, exist_ok=True)
        self.bw.start_sandbox(extra_args=self.sandbox_args())
        self.probe_features()
        log("openshell proxy at %s" % self.bw.proxy_addr)
        self.bw.start_squid()
        self.bw.start_tinyproxy()
        self.bw.start_mitmproxy()
        self.bw.start_floor()
        self.bw.start_floor_tls()
        self.bw.start_floor_sandbox()
        self.bw.start_floor_tls_sandbox()
        self.collect_info()
        plan = [("P1", self.p1), ("P2", self.p2), ("P3", self.p3), ("P5", self.p5),
                ("P6", self.p6), ("P7", self.p7), ("P8", self.p8), ("P4", self.p4)]
        only = set(self.args.only.split(",")) if self.args.only else None
        for key, fn in plan:
            if only and key not in only:
                self.skipped.add(key)
                continue
            log("== %s" % key)
            try:
                fn()
            except (W.WorldError, subprocess.TimeoutExpired, OSError, KeyError) as e:
                self.na.setdefault(key, "harness error: %s: %s" % (type(e).__name__, e))
                log("%s failed: %s" % (key, e))
        if self.args.profile:
            self.profile()
        compute_ratios(self.rows)
        self.verdict()
        self.info["duration_s"] = round(time.monotonic() - t0, 1)
        self.info["supervisor_deaths"] = self.deaths
        self.info["peer_restarts"] = self.bw.restarts
        self.info["profiles"] = self.profiles
        self.info["clients_killed_from_outside"] = self.killed_clients
        with open("/proc/loadavg") as f:
            self.info["loadavg_at_end"] = f.read().split()[:3]

    def profile(self):
        """perf record (software cpu-clock, call graphs) of the supervisor during a P1
        download, a P2 run and, with interception, a P3 keep-alive run; the reports go to
        bench/results/<stamp>-profile-<P>.txt."""
        if shutil.which("perf") is None:
            log("perf not installed: no profile")
            return
        tunnel = "https://%s:%d%s" % (BW.HOST_PASS, BW.HTTPS_PORT, BW.SMALL_PATH)
        mitm = "https://%s:%d%s" % (BW.HOST_MITM, BW.HTTPS_PORT, BW.SMALL_PATH)
        jobs = [("P1", lambda: self.py("bulk", self.bw.proxy_addr, BW.HOST_TUNNEL,
                                       BW.HTTP_PORT, P1_PATH, timeout=300)),
                ("P2", lambda: self.hey(tunnel, self.bw.proxy_addr, P2_SECONDS,
                                        P2_CONCURRENCY, False))]
        if self.features.get("interception"):
            jobs.append(("P3", lambda: self.hey(mitm, self.bw.proxy_addr, P3_SECONDS,
                                                P2_CONCURRENCY, True)))
        RESULTS.mkdir(parents=True, exist_ok=True)
        for label, action in jobs:
            out = self.bw.dir / ("perf-%s.data" % label)
            perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "1999", "-g",
                                     "-p", str(self.bw.sandbox.pid), "-o", str(out)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(0.5)
                action()
            finally:
                perf.send_signal(signal.SIGINT)
                perf.wait(timeout=60)
            parts = []
            for title, extra in (("flat profile, by symbol", ["--sort", "dso,sym", "-g",
                                                              "none"]),
                                 ("callers of the hottest symbols", ["--sort", "sym", "-g",
                                                                     "caller,0.5,callee",
                                                                     "--percent-limit", "3"])):
                rep = subprocess.run(["perf", "report", "-i", str(out), "--no-children",
                                      "--stdio", "--percent-limit", "0.5", *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, timeout=300)
                parts.append("#### %s\n%s" % (title, rep.stdout))
            dest = RESULTS / ("%s-profile-%s.txt" % (self.stamp, label))
            dest.write_text("\n".join(parts))
            self.profiles.append(str(dest.relative_to(REPO)))
            log("profile %s written to %s" % (label, dest))

    def collect_info(self):
        def ver(argv):
            try:
                p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, timeout=30)
                return p.stdout.strip().splitlines()[0] if p.stdout.strip() else "?"
            except (OSError, subprocess.TimeoutExpired):
                return "?"
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        with open("/proc/loadavg") as f:
            self.info["loadavg_at_start"] = f.read().split()[:3]
        self.info.update({
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "kernel": platform.release(), "cpus": os.cpu_count(),
            "git_head": rev.stdout.strip() or "?",
            "binary": self.bw.world.sandbox_bin,
            "binary_sha256": file_sha256(self.bw.world.sandbox_bin)[:16],
            "rounds": self.args.rounds,
            "versions": {
                "squid": ver(["/usr/sbin/squid", "-v"]),
                "tinyproxy": ver(["/usr/bin/tinyproxy", "-v"]),
                "mitmproxy": ver(["/usr/bin/mitmdump", "--version"]),
                "nginx": ver(["/usr/sbin/nginx", "-v"]),
                "hey": "hey (Debian %s)" % ver(["dpkg-query", "-W", "-f", "${Version}", "hey"]),
            },
            "features": {k: v for k, v in self.features.items() if k != "tls_probe"},
        })


def file_sha256(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- output ---------------------------------------------------------------------------------
def fmt_num(v, unit):
    if v is None:
        return "-"
    if unit in ("us",):
        return "%.0f" % v
    if unit in ("ms", "KiB"):
        return "%.2f" % v if v < 10 else "%.1f" % v
    return "%.0f" % v


def fmt_peers(vs):
    return ", ".join("%.2fx %s" % (f, p) for p, f in vs.items() if f is not None) or "-"


def fmt_vs_direct(r):
    if r.vs_direct is None:
        return "-"
    if r.higher_better:
        return "%.2fx" % r.vs_direct
    return "%+.0f %s" % (r.vs_direct, r.unit) if r.unit == "us" else "%+.2f %s" % (
        r.vs_direct, r.unit)


def table_lines(b, markdown):
    head = ["scen", "measurement", "contender", "median", "min-max", "unit", "vs direct",
            "openshell vs peer (>1: openshell better)", "errors"]
    rows = []
    for r in b.rows:
        s = r.stats
        rng = "-" if s["min"] is None else "%s-%s" % (fmt_num(s["min"], r.unit),
                                                      fmt_num(s["max"], r.unit))
        med = fmt_num(s["median"], r.unit) if s["n"] else "(%s)" % (r.note[:40] or "no data")
        rows.append([r.scenario, r.metric, r.contender, med, rng, r.unit, fmt_vs_direct(r),
                     fmt_peers(r.vs_peers) if r.contender == "openshell" else "",
                     str(r.errors) if r.errors else ""])
    for k, why in sorted(b.na.items()):
        if not any(r.scenario == k for r in b.rows):
            rows.append([k, NOT_AVAILABLE, "", "", "", "", "", "", ""])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
        return out
    widths = [max(len(x[i]) for x in [head] + rows) for i in range(len(head))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]


def verdict_lines(b, markdown):
    out = []
    for k in sorted(TARGETS):
        v = b.verdicts.get(k, {"pass": None, "detail": "no result"})
        mark = {True: "PASS", False: "MISS", None: "n/a"}[v["pass"]]
        if markdown:
            out.append("| %s | %s | %s | %s |" % (k, TARGETS[k], mark, v["detail"]))
        else:
            out.append("%s %-4s %s  [target: %s]" % (k, mark, v["detail"], TARGETS[k]))
    if markdown:
        out = ["| scen | target | verdict | this run |", "|---|---|---|---|"] + out
    return out


def write_results(b):
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = b.stamp
    j = {"info": b.info, "targets": TARGETS, "verdicts": b.verdicts,
         "not_available": b.na, "rows": [r.to_json() for r in b.rows]}
    jp = RESULTS / ("%s.json" % stamp)
    jp.write_text(json.dumps(j, indent=1) + "\n")
    i = b.info
    md = ["# openshell-sandbox benchmark, %s" % i.get("date", stamp), "",
          "Kernel %s, %s CPUs, HEAD %s (binary %s, sha256 %s), %s rounds interleaved; medians with min-max over "
          "rounds; load average %s at start, %s at end (other work on the machine skews "
          "everything). Generated by `make bench` (scripts/bench.py); method in "
          "bench/NOTES.md." % (i.get("kernel"), i.get("cpus"), i.get("git_head"),
                               i.get("binary"), i.get("binary_sha256"), i.get("rounds"), "/".join(i.get("loadavg_at_start", [])),
                               "/".join(i.get("loadavg_at_end", []))), "",
          "Peers: " + "; ".join("%s" % v for v in i.get("versions", {}).values()), "",
          "## Targets", ""] + verdict_lines(b, True) + ["", "## Measurements", ""] + \
        table_lines(b, True)
    if b.na:
        md += ["", "## Not available", ""] + ["* %s: %s" % kv for kv in sorted(b.na.items())]
    if b.profiles:
        md += ["", "Profiles of the supervisor (perf, cpu-clock): " + ", ".join(b.profiles)]
    if b.deaths:
        md += ["", "## The supervisor died", ""] + ["* " + d for d in b.deaths]
    notes = [r for r in b.rows if r.note]
    if notes:
        md += ["", "## Notes", ""] + ["* %s %s %s: %s" % (r.scenario, r.metric, r.contender,
                                                         r.note) for r in notes]
    mp = RESULTS / ("%s.md" % stamp)
    mp.write_text("\n".join(md) + "\n")
    return jp, mp


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--only", default="", help="comma-separated scenarios, e.g. P1,P6")
    ap.add_argument("--quick", action="store_true", help="1 round, short runs (smoke test)")
    ap.add_argument("--tunnels", type=int, default=P4_TUNNELS, help="P4 tunnel count")
    ap.add_argument("--profile", action="store_true",
                    help="perf record the supervisor during P1, P2 (and P3) runs")
    ap.add_argument("--no-write", action="store_true", help="do not write bench/results/")
    args = ap.parse_args()
    if args.quick:
        global P2_SECONDS, P3_SECONDS, LAT_REQUESTS, P6_RUNS, P7_RUNS
        args.rounds, P2_SECONDS, P3_SECONDS, LAT_REQUESTS = 1, 2, 2, 50
        P6_RUNS, P7_RUNS = 5, 3
        args.tunnels = min(args.tunnels, 2000)
    args.rounds = max(1, min(args.rounds, 20))
    problem = W.environment_problem()
    if problem:
        print("bench: " + problem, file=sys.stderr)
        return 2
    for tool in (HEY, "/usr/sbin/squid", "/usr/bin/tinyproxy", "/usr/bin/mitmdump",
                 "/usr/sbin/nginx"):
        if not os.access(tool, os.X_OK):
            print("bench: %s missing (run scripts/deps-bench.sh)" % tool, file=sys.stderr)
            return 2
    if not os.access(W.SANDBOX_BIN, os.X_OK):
        print("bench: %s is not built (run `make`)" % W.SANDBOX_BIN, file=sys.stderr)
        return 2
    # Children inherit this: 10,000 tunnels need > 20,000 descriptors in the proxies.
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 200000))
    except (ValueError, OSError):
        pass

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    b = Bench(args)
    try:
        b.run()
    finally:
        b.bw.close()
    print("\n".join(table_lines(b, False)))
    print()
    print("\n".join(verdict_lines(b, False)))
    for k, why in sorted(b.na.items()):
        print("%s: %s: %s" % (k, NOT_AVAILABLE, why))
    for why in b.deaths + b.bw.restarts:
        print("WARNING: " + why)
    if b.killed_clients:
        print("WARNING: %d client runs were SIGKILLed from outside and retried" %
              b.killed_clients)
    if not args.no_write:
        jp, mp = write_results(b)
        print("\nwritten: %s, %s (%.0f s)" % (jp.relative_to(REPO), mp.relative_to(REPO),
                                              b.info.get("duration_s", 0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
