# Resource limits against the real daemon: slow clients (header and body timeouts), more idle
# connections than connection_limit, huge headers and URLs, deeply nested JSON, the
# max_references cap hammered, max_products filled (memory per product measured), and the
# reference-memory budget over all products.
import os
import socket
import subprocess
import threading
import time

import pytest
import requests

import hd

TIMEOUT_S = 2  # request_timeout_s for the connection tests


def wait_closed(sock, limit, t0):
    """Seconds from t0 until the server closes sock (recv gives b"" or a reset), or None when
    it is still open at t0 + limit."""
    sock.settimeout(0.5)
    while time.monotonic() - t0 < limit:
        try:
            data = sock.recv(65536)
            if not data:
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
    return None


def connect(d):
    return socket.create_connection(("127.0.0.1", d.port), timeout=10)


def test_slow_client_headers_and_body(daemons):
    d = daemons(args=["-o", "request_timeout_s=%d" % TIMEOUT_S])
    d.create_product("p")
    base_fds = hd.n_fds(d.pid)
    socks = []
    # Headers that never end.
    s = connect(d)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
    socks.append(("headers", s, time.monotonic()))
    # A body that stops a third of the way.
    s = connect(d)
    s.sendall(b"POST /v1/products/p/inspect HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
              b"Content-Length: 300000\r\n\r\n" + hd.fixture("00_normal.png")[:10000])
    socks.append(("body", s, time.monotonic()))
    # Nothing at all after connecting.
    socks.append(("silent", connect(d), time.monotonic()))
    # Meanwhile the daemon answers others at once.
    t0 = time.monotonic()
    d.assert_serving()
    assert time.monotonic() - t0 < 5
    for what, s, t0 in socks:
        took = wait_closed(s, TIMEOUT_S * 10 + 20, t0)
        s.close()
        assert took is not None, "%s: connection still open after %ds" % (what, TIMEOUT_S * 10 + 20)
        assert took < TIMEOUT_S * 5 + 10, "%s: closed after %.1f s" % (what, took)
        hd.measured("slow client (%s): closed after %.1f s (request_timeout_s=%d)" % (what, took, TIMEOUT_S))
    d.assert_serving()
    # The abandoned request left nothing behind.
    deadline = time.monotonic() + 10
    while hd.n_fds(d.pid) > base_fds + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert hd.n_fds(d.pid) <= base_fds + 1, (hd.n_fds(d.pid), base_fds)


def test_idle_connections_over_the_limit(daemons):
    limit = 16
    d = daemons(args=["-o", "connection_limit=%d" % limit, "-o", "request_timeout_s=%d" % TIMEOUT_S])
    base_fds = hd.n_fds(d.pid)
    idle = [connect(d) for _ in range(limit * 3)]
    time.sleep(0.5)
    # At most `limit` of them are held; the rest were closed at once.
    closed = 0
    for s in idle:
        s.settimeout(0.05)
        try:
            if s.recv(1) == b"":
                closed += 1
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed += 1
    assert closed >= limit * 2, "only %d of %d connections over the limit were refused" % (closed, limit * 3)
    fds = hd.n_fds(d.pid)
    assert fds <= base_fds + limit + 4, (fds, base_fds)
    threads = hd.n_threads(d.pid)
    # After the idle timeout the held ones are dropped too and the daemon answers again.
    t0 = time.monotonic()
    while True:
        try:
            r = requests.get(d.base + "/healthz", timeout=5)
            if r.status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() - t0 < TIMEOUT_S * 5 + 20, "no answer while idle connections pile up"
        time.sleep(0.2)
    waited = time.monotonic() - t0
    for s in idle:
        s.close()
    hd.measured("idle connections: %d opened against connection_limit=%d: %d refused at once, "
                "peak %d fds (+%d), %d threads; served again after %.1f s"
                % (limit * 3, limit, closed, fds, fds - base_fds, threads, waited))
    deadline = time.monotonic() + 15
    while hd.n_fds(d.pid) > base_fds + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert hd.n_fds(d.pid) <= base_fds + 1


def raw(d, head, body=b"", timeout=30):
    s = connect(d)
    s.settimeout(timeout)
    try:
        s.sendall(head + body)
    except (BrokenPipeError, ConnectionResetError):
        pass
    data = b""
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return data


@pytest.mark.parametrize("shape", ["one_huge_header", "many_headers", "huge_url"])
def test_huge_headers(daemons, shape):
    d = daemons()
    if shape == "one_huge_header":
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1000000 + b"\r\nConnection: close\r\n\r\n"
    elif shape == "many_headers":
        head = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
                b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(20000)) +
                b"Connection: close\r\n\r\n")
    else:
        head = b"GET /v1/products/" + b"a" * 500000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    data = raw(d, head)
    # Refused (431/414/413/400) or dropped, never served, and the daemon lives on.
    if data:
        status = int(data.split(b" ", 2)[1])
        assert status in (400, 413, 414, 431), data[:200]
    d.assert_serving()
    hd.measured("huge request head (%s, %d KiB): %s" % (
        shape, len(head) // 1024, data.split(b"\r\n", 1)[0].decode() if data else "connection closed"))


def test_deeply_nested_json(daemons):
    d = daemons()
    for body in (b"[" * 200000 + b"]" * 200000,
                 b'{"object": "x", "templates": ' + b"[" * 100000 + b"]" * 100000 + b"}",
                 b'{"object": ' * 50000 + b'"x"' + b"}" * 50000,
                 b"[" * 300000):
        r = d.put("/v1/products/nested", data=body, headers={"Content-Type": "application/json"})
        hd.assert_error(r, (400, 413))
        d.assert_serving()
    # A large but flat definition over the size limit.
    big = b'{"object": "x", "description": "' + b"d" * (300 * 1024) + b'"}'
    hd.assert_error(d.put("/v1/products/nested", data=big, headers={"Content-Type": "application/json"}),
                    (400, 413))
    assert d.get("/v1/products/nested").status_code == 404


def test_max_references_cap(daemons):
    cap = 20
    d = daemons(args=["-o", "max_references=%d" % cap])
    d.create_product("r")
    seed = 1000
    for _ in range(cap // 5):
        files = [("f%d" % i, ("%d.png" % i, hd.noise_png(seed + i), "image/png")) for i in range(5)]
        seed += 5
        r = d.post("/v1/products/r/references", files=files)
        assert r.status_code == 200, r.text[:300]
    assert d.n_refs("r") == cap
    rss0 = hd.rss_kib(d.pid)
    # Thousands of further attempts: each refused, nothing added, memory flat.
    n = 0
    t0 = time.monotonic()
    while n < 2000 and time.monotonic() - t0 < 60:
        r = d.add_ref("r", hd.noise_png(seed + n, size=16))
        hd.assert_error(r, 409, "conflict")
        n += 1
    files = [("f%d" % i, ("%d.png" % i, hd.noise_png(99000 + i), "image/png")) for i in range(3)]
    hd.assert_error(d.post("/v1/products/r/references", files=files), 409, "conflict")
    assert d.n_refs("r") == cap
    rss1 = hd.rss_kib(d.pid)
    if not hd.is_asan(d.pid):
        assert rss1 - rss0 < 20 * 1024, (rss0, rss1)
    hd.measured("max_references=%d: %d more uploads refused with 409 in %.1f s, RSS %d -> %d KiB"
                % (cap, n, time.monotonic() - t0, rss0, rss1))
    # The cap itself is bounded: the configuration refuses more than 256.
    r = subprocess.run([hd.daemon_bin(), "-o", "max_references=100000", "--print-config"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "max_references" in r.stderr, (r.returncode, r.stderr)


def test_max_products_and_memory_per_product(daemons):
    cap = int(os.environ.get("HARDEN_MAX_PRODUCTS", "300"))
    d = daemons(args=["-o", "max_products=%d" % cap])
    if hd.is_asan(d.pid) and "HARDEN_MAX_PRODUCTS" not in os.environ:
        # Under ASan each product costs ~10x the time: fewer, same checks.
        d.stop_ok()
        cap = 80
        d.args = ["-o", "max_products=%d" % cap]
        d.start()
    rss0 = hd.rss_kib(d.pid)
    t0 = time.monotonic()
    for i in range(cap):
        r = d.put("/v1/products/p%05d" % i, json={"object": "part number %d" % i,
                                                    "anomaly_states": ["{} with defect %d" % i]})
        assert r.status_code == 201, r.text[:300]
    took = time.monotonic() - t0
    rss1 = hd.rss_kib(d.pid)
    hd.assert_error(d.put("/v1/products/one-too-many", json={"object": "x"}), 409, "conflict")
    # Replacing one at the cap is fine; after a delete there is room again.
    assert d.put("/v1/products/p00000", json={"object": "bolt"}).status_code == 200
    assert d.delete("/v1/products/p00001").status_code == 204
    assert d.put("/v1/products/one-more", json={"object": "x"}).status_code == 201
    # Zero-shot products with references: memory per reference.
    refs = 8
    for i in range(refs):
        d.add_ref_ok("p00002", hd.noise_png(5000 + i, size=64))
    rss2 = hd.rss_kib(d.pid)
    n = len(d.get("/v1/products").json()["products"])
    assert n == cap
    d.stop_ok()
    hd.assert_store_clean(d.state_dir)
    t1 = time.monotonic()
    d.start(timeout=300)
    load = time.monotonic() - t1
    assert len(d.get("/v1/products").json()["products"]) == cap
    asan = " (ASan build: inflated)" if hd.is_asan(d.pid) else ""
    hd.measured("max_products=%d: created in %.1f s, RSS %d -> %d KiB = %.1f KiB per zero-shot "
                "product (tiny model)%s; %d references +%d KiB; restart loaded them in %.1f s"
                % (cap, took, rss0, rss1, (rss1 - rss0) / cap, asan, refs, rss2 - rss1, load))


def gauge(d, name):
    for line in d.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /metrics" % name)


def test_reference_memory_cap(daemons):
    d = daemons()
    d.create_product("a")
    d.create_product("b")
    d.add_ref_ok("a", hd.noise_png(7000))
    per_ref = gauge(d, "inspectd_reference_memory_bytes")
    assert per_ref > 0
    # The default is half of physical memory.
    with open("/proc/meminfo") as f:
        total = int(next(l for l in f if l.startswith("MemTotal:")).split()[1]) * 1024
    limit = gauge(d, "inspectd_reference_memory_limit_bytes")
    assert abs(limit - total / 2) < 0.01 * total, (limit, total)

    # Room for five and a half references: the sixth is refused whichever product it is for.
    d.stop_ok()
    d.args = ["-o", "max_reference_memory=%d" % int(5.5 * per_ref)]
    d.start()
    for i in range(3):
        d.add_ref_ok("b", hd.noise_png(7001 + i))
    files = [("f%d" % i, ("%d.png" % i, hd.noise_png(7010 + i), "image/png")) for i in range(2)]
    r = d.post("/v1/products/a/references", files=files)
    hd.assert_error(r, 409, "conflict", words=("max_reference_memory",))
    assert d.n_refs("a") == 1, "a refused upload added references"
    d.add_ref_ok("a", hd.noise_png(7020))
    hd.assert_error(d.add_ref("b", hd.noise_png(7021)), 409, "conflict",
                    words=("max_reference_memory",))
    assert gauge(d, "inspectd_reference_memory_bytes") == 5 * per_ref
    # Clearing one product's references makes room for the other's.
    assert d.delete("/v1/products/b/references").status_code == 200
    r = d.post("/v1/products/a/references", files=files)
    assert r.status_code == 200, r.text[:300]
    assert d.n_refs("a") == 4 and gauge(d, "inspectd_reference_memory_bytes") == 4 * per_ref

    # A limit lowered below what the store holds: everything still loads and inspects, the log
    # says why uploads are refused, and they are.
    d.stop_ok()
    d.args = ["-o", "max_reference_memory=%d" % int(2 * per_ref)]
    d.start()
    assert d.n_refs("a") == 4
    r = d.inspect("a", hd.noise_png(7030))
    assert r.status_code == 200 and r.json()["mode"] == "few-shot", r.text[:300]
    assert "max_reference_memory" in d.log_tail(200), d.log_tail()
    hd.assert_error(d.add_ref("b", hd.noise_png(7031)), 409, "conflict",
                    words=("max_reference_memory",))
    d.stop_ok()
    hd.assert_store_clean(d.state_dir)
