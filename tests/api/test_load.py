# Under load: concurrent clients all get correct answers; a full queue answers 503 + Retry-After
# at once instead of hanging; memory stays flat over many inspections.
import threading
import time

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
    print("%d inspections from %d clients in %.2f s (%.1f/s)" % (len(flat), n_clients, dt,
                                                                 len(flat) / dt))
    assert len(flat) == n_clients * per_client
    bad = [x for x in flat if x[1] != 200]
    assert not bad, "%d not 200, e.g. %s" % (len(bad), bad[:5])
    wrong = [x for x in flat if abs(x[2] - expected[x[0]]) > 1e-6]
    assert not wrong, "scores differ from the sequential ones under load: %s" % wrong[:5]
    d.assert_serving()


def test_full_queue_answers_503_at_once(daemon):
    d = daemon("--queue", "2", "--workers", "1", "--threads", "1")
    d.create_product("busy")
    big = helpers.pattern_png(3000, 3000)
    t0 = time.monotonic()
    assert d.inspect("busy", big, "image/png", "?map=none").status_code == 200
    one = time.monotonic() - t0
    n = 16
    barrier = threading.Barrier(n)
    out = [None] * n

    def client(i):
        s = requests.Session()
        barrier.wait()
        t = time.monotonic()
        try:
            r = s.post(d.base + "/v1/products/busy/inspect?map=none", data=big,
                       headers={"Content-Type": "image/png"}, timeout=300)
            out[i] = (r, time.monotonic() - t)
        except Exception as e:
            out[i] = (e, time.monotonic() - t)
        s.close()

    deadline = 60 + 2 * n * one
    t0 = time.monotonic()
    threads = run_threads(n, client)
    for t in threads:
        t.join(max(0.1, deadline - (time.monotonic() - t0)))
    assert not any(t.is_alive() for t in threads), "requests still hanging after %.0f s" % deadline
    for r, _ in out:
        assert isinstance(r, requests.Response), "request failed: %r" % (r,)
        helpers.record("POST", "/v1/products/busy/inspect", r.status_code)
    ok = [(r, dt) for r, dt in out if r.status_code == 200]
    busy = [(r, dt) for r, dt in out if r.status_code == 503]
    print("one 3000x3000 inspection %.2f s; burst of %d: %d x 200, %d x 503 (503s in <= %.3f s)" % (
        one, n, len(ok), len(busy), max([dt for _, dt in busy] or [0])))
    assert len(ok) + len(busy) == n, [r.status_code for r, _ in out]
    assert len(ok) >= 3, "fewer accepted than workers + queue"
    assert len(busy) >= 1, "16 simultaneous requests against --queue 2 --workers 1: no 503"
    for r, dt in busy:
        err = assert_error(r, 503, "busy")
        retry = r.headers.get("Retry-After")
        assert retry is not None and retry.isdigit() and int(retry) >= 1, (retry, err)
        assert dt < 1.0, "a 503 took %.2f s" % dt
    d.assert_serving()
    assert d.inspect("busy", fixture_image(A), "image/png").status_code == 200


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
    print("RSS after warm-up %.1f MiB, after 500 more inspections %.1f MiB (growth %.2f MiB); "
          "samples MiB: %s" % (before / 1024, after / 1024, growth,
                               [round(s / 1024, 1) for s in samples]))
    c.close()
    assert growth < 10, "RSS grew by %.1f MiB over 500 inspections" % growth
