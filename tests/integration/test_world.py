"""The test world itself (no supervisor involved): if these fail, every other
integration result is meaningless."""

import world as W


def curl(world, *args):
    return world.run_in_container(["curl", "-sS", "--max-time", "5", *args])


def test_http_by_name_from_container(world):
    r = curl(world, "http://plain.allowed.test/x?y=1")
    assert r.returncode == 0, str(r)
    assert r.stdout.startswith("hello from plain.allowed.test\n"), str(r)
    assert "path=/x?y=1\n" in r.stdout and "host=plain.allowed.test\n" in r.stdout


def test_https_with_world_ca(world):
    r = curl(world, "--cacert", world.ca_cert, "https://api.allowed.test/")
    assert r.returncode == 0, str(r)
    assert r.stdout.startswith("hello from api.allowed.test\n"), str(r)
    r = curl(world, "--cacert", world.ca_cert, "https://a.wild.test:8443/")
    assert r.stdout.startswith("hello from a.wild.test\n"), str(r)


def test_https_untrusted_without_ca(world):
    r = curl(world, "--cacert", "/etc/ssl/certs/ca-certificates.crt", "https://api.allowed.test/")
    assert r.returncode != 0, str(r)


def test_second_range_is_routed(world):
    r = curl(world, "http://far.allowed.test:8080/")
    assert r.stdout.startswith("hello from far.allowed.test\n"), str(r)


def test_dns_only_names_are_answered_and_logged(world):
    mark = world.dns_mark()
    r = curl(world, "http://probe1.dnsonly.test/")
    assert r.stdout.startswith("hello from dnsonly.test\n"), str(r)
    assert "probe1.dnsonly.test" in world.dns_names(mark)
    r = world.run_in_container(["getent", "ahostsv4", "nosuch.invalid"])
    assert r.returncode != 0, str(r)


def test_hosts_names_do_not_hit_dns_for_ipv4(world):
    mark = world.dns_mark()
    r = world.run_in_container(["getent", "ahostsv4", "denied.test"])
    assert r.returncode == 0 and "198.51.100.15" in r.stdout, str(r)
    assert "denied.test" not in world.dns_names(mark)


def test_udp_echo_icmp_ipv6_reachable_without_fence(world):
    """The fence tests are only meaningful if all of this works when there is no fence."""
    W.require_ping()
    umark = world.udp_mark()
    script = ("import socket\n"
              "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "u.sendto(b'world-udp-check', ('198.51.100.10', %d))\n"
              "s = socket.create_connection(('198.51.100.10', %d), timeout=5)\n"
              "s.sendall(b'ping'); print(s.recv(16).decode())\n" % (W.UDP_PORT, W.ECHO_PORT))
    r = world.run_in_container([W.PYTHON, "-c", script])
    assert r.returncode == 0 and r.stdout.strip() == "ping", str(r)
    got = [d for d in _wait(lambda: world.udp_datagrams(umark))
           if d["data_hex"] == b"world-udp-check".hex()]
    assert got and got[0]["local_ip"] == "198.51.100.10", got
    imark = world.icmp_mark()
    r = world.run_in_container(["ping", "-c1", "-W2", "198.51.100.10"])
    assert r.returncode == 0, str(r)
    echoes = _wait(lambda: world.icmp_echoes(imark))
    assert echoes and echoes[0]["dst"] == "198.51.100.10", echoes
    r = curl(world, "-g", "http://[%s]/" % W.WORLD_V6)
    assert r.stdout.startswith("hello from v6.world.test\n"), str(r)


def test_no_default_route_in_container(world):
    r = W.run([W.IP, "-n", world.container_ns, "route", "show", "default"])
    assert r.stdout.strip() == ""
    r = W.run([W.IP, "-n", world.container_ns, "-6", "route", "show", "default"])
    assert r.stdout.strip() == ""
    r = W.run([W.IP, "-n", world.world_ns, "route", "show", "default"])
    assert r.stdout.strip() == ""
    assert sorted(world.container_links()) == sorted(["lo", world.container_if])


def test_world_is_clean(world):
    assert world.leftovers() == []


def _wait(fn, timeout=2.0):
    import time
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)
