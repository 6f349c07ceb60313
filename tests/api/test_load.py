# Under load: concurrent clients all get correct answers; a full queue answers 503 + Retry-After
# at once instead of hanging; memory stays flat over many inspections.
import threading
import time

import pytest
import requests

import helpers
from helpers import assert_error, fixture_image

A, B = "02_scratch.png", "05_normal.jpg"


def run_threads(n, target):
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def test_concurrent_clients(daemon):
    d = daemon()
    d.create_product("load")
    d.add_reference("load", "ref_00_normal.png")
    expected = {n: d.inspect_ok("load", n)["score"] for n in (A, B)}
    images = {n: (fixture_image(n), helpers.content_type_of(n)) for n in (A, B)}
    n_clients, per_client = 8, 50
    results = [[] for _ in range(n_clients)]

    def client(i):
        c = d.client()
        for k in range(per_client):
            name = (A, B)[(i + k) % 2]
            data, ctype = images[name]
            try:
                r = c.post("/v1/products/load/inspect", data=data,
                           headers={"Content-Type": ctype}, timeout=120)
                results[i].append((name, r.status_code, r.json().get("score")))
            except Exception as e:
                results[i].append((name, repr(e), None))
        c.close()

    t0 = time.monotonic()
    for t in run_threads(n_clients, client):
        t.join(600)
    dt = time.monotonic() - t0
    flat = [x for r in results for x in r]
    helpers.measured("%d inspections from %d clients in %.2f s (%.1f/s)" % (
        len(flat), n_clients, dt, len(flat) / dt))
    assert len(flat) == n_clients * per_client
    bad = [x for x in flat if x[1] != 200]
    assert not bad, "%d not 200, e.g. %s" % (len(bad), bad[:5])
    wrong = [x for x in flat if abs(x[2] - expected[x[0]]) > 1e-6]
    assert not wrong, "scores differ from the sequential ones under load: %s" % wrong[:5]
    d.assert_serving()


@pytest.fixture(scope="module")
def big():
    """6000 x 6000 PNG of ~1 MB: an inspection that takes a while (decode + resize)."""
    return helpers.pattern_png(6000, 6000)


def test_full_queue_answers_503_at_once(daemon, big):
    d = daemon("--queue", "2", "--workers", "1", "--threads", "1")
    d.create_product("busy")
    t0 = time.monotonic()
    assert d.inspect("busy", big, "image/png", "?map=none").status_code == 200
    one = time.monotonic() - t0
    n = 16
    barrier = threading.Barrier(n)
    out = [None] * n
    # Line gateways keep their connections open: every client, and the liveness probes,
    # already hold an established keep-alive connection when the burst starts.
    sessions = [requests.Session() for _ in range(n)]
    probes = [requests.Session() for _ in range(16)]
    for s in sessions + probes:
        assert s.get(d.base + "/healthz", timeout=10).status_code == 200

    def client(i):
        s = sessions[i]
        barrier.wait()
        t = time.monotonic()
        try:
            r = s.post(d.base + "/v1/products/busy/inspect?map=none", data=big,
                       headers={"Content-Type": "image/png"}, timeout=300)
            out[i] = (r, time.monotonic() - t)
        except Exception as e:
            out[i] = (e, time.monotonic() - t)

    probe_times = [None] * len(probes)

    def probe(i):
        t = time.monotonic()
        try:
            probes[i].get(d.base + "/healthz", timeout=30)
        except requests.RequestException:
            pass
        probe_times[i] = time.monotonic() - t

    deadline = 60 + 2 * n * one
    t0 = time.monotonic()
    threads = run_threads(n, client)
    # Liveness stays quick while the queue is full, on fresh and on kept-alive connections.
    time.sleep(min(0.2, one / 2))
    t = time.monotonic()
    assert requests.get(d.base + "/healthz", timeout=10).status_code == 200
    healthz_fresh = time.monotonic() - t
    for p in run_threads(len(probes), probe):
        p.join(60)
    healthz = max(probe_times)
    for t in threads:
        t.join(max(0.1, deadline - (time.monotonic() - t0)))
    assert not any(t.is_alive() for t in threads), "requests still hanging after %.0f s" % deadline
    for r, _ in out:
        assert isinstance(r, requests.Response), "request failed: %r" % (r,)
        helpers.record("POST", "/v1/products/busy/inspect", r.status_code)
    ok = [(r, dt) for r, dt in out if r.status_code == 200]
    busy = [(r, dt) for r, dt in out if r.status_code == 503]
    helpers.measured(
        "one 6000x6000 inspection %.2f s; burst of %d: %d x 200, %d x 503 (503s in <= %.3f s); "
        "healthz during the burst %.3f s (new connection), %s s (kept-alive ones)" % (
            one, n, len(ok), len(busy), max([dt for _, dt in busy] or [0]), healthz_fresh,
            [round(x, 2) for x in probe_times]))
    assert len(ok) + len(busy) == n, [r.status_code for r, _ in out]
    assert len(ok) >= 3, "fewer accepted than workers + queue"
    # The queue is the only place a request may wait: an accepted one is answered within about
    # (workers + queue) inspections. Longer means it waited in a hidden queue instead of 503.
    bound = 1.5 * 3 * one + 1.0
    slow = sorted(round(dt, 2) for _, dt in ok if dt > bound)
    assert not slow, "accepted requests waited %s s (bound %.2f s for 1 worker + queue 2)" % (
        slow, bound)
    assert len(busy) >= 1, "16 simultaneous requests against --queue 2 --workers 1: no 503"
    for r, dt in busy:
        err = assert_error(r, 503, "busy")
        retry = r.headers.get("Retry-After")
        assert retry is not None and retry.isdigit() and int(retry) >= 1, (retry, err)
        assert dt < 1.0, "a 503 took %.2f s" % dt
    # A liveness probe must not wait for an inference (one takes `one` seconds here): a
    # probe stuck behind a blocked connection would get a busy daemon restarted.
    assert healthz_fresh < 0.3, "/healthz took %.2f s while the queue was full" % healthz_fresh
    assert healthz < 0.3, ("/healthz on a kept-alive connection took %.2f s while the queue was "
                           "full (it waited for an inference)" % healthz)
    for s in sessions + probes:
        s.close()
    d.assert_serving()
    assert d.inspect("busy", fixture_image(A), "image/png").status_code == 200
    # The refusals are counted: requests by route and status 503 in /metrics.
    metrics = d.get("/metrics").text
    counted = 0
    for line in metrics.splitlines():
        if not line.startswith("#") and 'status="503"' in line and "inspect" in line \
                and "_bucket" not in line:
            counted += float(line.rsplit(None, 1)[1])
    assert counted == len(busy), "metrics count %g 503s, clients saw %d" % (counted, len(busy))


def test_sigterm_drains_requests_in_flight(daemon, big):
    d = daemon("--threads", "1")
    d.create_product("drain")
    t0 = time.monotonic()
    assert d.inspect("drain", big, "image/png", "?map=none").status_code == 200
    one = time.monotonic() - t0
    result = {}

    def client():
        try:
            r = requests.post(d.base + "/v1/products/drain/inspect?map=none", data=big,
                              headers={"Content-Type": "image/png"}, timeout=120)
            result["status"] = r.status_code
            result["score"] = r.json().get("score")
        except Exception as e:
            result["error"] = repr(e)
        result["done"] = time.monotonic()

    t = threading.Thread(target=client, daemon=True)
    t.start()
    time.sleep(one * 0.4)  # the inspection is running
    sigterm = time.monotonic()
    rc = d.stop(60)
    t.join(60)
    helpers.record("POST", "/v1/products/drain/inspect", result.get("status", 0))
    assert rc == 0, "exit %r on SIGTERM\n%s" % (rc, d.log_tail())
    assert result.get("status") == 200, "request in flight during SIGTERM: %s" % result
    assert isinstance(result.get("score"), float)
    assert result["done"] > sigterm, "the request ended before SIGTERM: nothing was drained"
    helpers.measured("drain: inspection %.2f s, SIGTERM at %.2f s, answered %.2f s after it" % (
        one, one * 0.4, result["done"] - sigterm))


def test_rss_flat_over_many_inspections(daemon):
    # ASan keeps freed memory in quarantine; keep it small so that RSS shows real growth.
    d = daemon(env={"ASAN_OPTIONS": helpers.asan_options("quarantine_size_mb=4")})
    d.create_product("rss")
    d.add_references_multipart("rss", ["ref_00_normal.png", "ref_01_normal.png"])
    data = fixture_image("06_crack.png")
    c = d.client()

    def inspect_n(n):
        for _ in range(n):
            r = c.post("/v1/products/rss/inspect", data=data, headers={"Content-Type": "image/png"})
            assert r.status_code == 200, r.text

    inspect_n(50)
    before = d.rss_kib()
    samples = [before]
    for _ in range(10):
        inspect_n(50)
        samples.append(d.rss_kib())
    after = samples[-1]
    growth = (after - before) / 1024
    helpers.measured("RSS after warm-up %.1f MiB, after 500 more inspections %.1f MiB "
                     "(growth %.2f MiB); samples MiB: %s" % (
                         before / 1024, after / 1024, growth,
                         [round(s / 1024, 1) for s in samples]))
    c.close()
    assert growth < 10, "RSS grew by %.1f MiB over 500 inspections" % growth
