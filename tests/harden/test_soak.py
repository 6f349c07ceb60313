# A bounded soak: mixed traffic (inspections with and without maps on a zero-shot and a
# few-shot product, reads, metrics, and an admin churning a product and its references)
# for HARDEN_SOAK_S seconds (default 45). No answer outside the expected ones (503 when the
# queue is full), open fds flat, RSS flat (release builds; ASan's quarantine grows by design),
# p50/p99 reported. tests/harden/soak runs it for longer.
import json
import os
import threading
import time

import requests

import hd

SECONDS = float(os.environ.get("HARDEN_SOAK_S", "45"))
INSPECTORS = int(os.environ.get("HARDEN_SOAK_CLIENTS", "6"))


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = []  # inspections answered 200, seconds
        self.status = {}
        self.errors = []

    def add(self, kind, status, expected, took=None):
        with self.lock:
            key = "%s %s" % (kind, status)
            self.status[key] = self.status.get(key, 0) + 1
            if status not in expected:
                if len(self.errors) < 20:
                    self.errors.append(key)
                self.status["errors"] = self.status.get("errors", 0) + 1
            elif took is not None and status == 200:
                self.latency.append(took)


def inspector(d, stop, stats, k):
    s = requests.Session()
    images = [hd.fixture(n) for n in ("00_normal.png", "02_scratch.jpg", "03_spot.png", "06_crack.jpg")]
    i = 0
    while not stop.is_set():
        i += 1
        img = images[(i + k) % len(images)]
        ctype = "image/jpeg" if img[:2] == b"\xff\xd8" else "image/png"
        pid = "fs" if i % 2 else "zs"
        query = "" if i % 3 == 0 else "?map=none"
        t0 = time.monotonic()
        try:
            r = s.post(d.base + "/v1/products/%s/inspect%s" % (pid, query), data=img,
                       headers={"Content-Type": ctype}, timeout=120)
            stats.add("inspect", r.status_code, (200, 503), time.monotonic() - t0)
            if r.status_code == 503:
                time.sleep(float(r.headers.get("Retry-After", "1")) / 10)
        except requests.RequestException as e:
            stats.add("inspect", type(e).__name__, ())


def reader(d, stop, stats):
    s = requests.Session()
    paths = ["/healthz", "/readyz", "/metrics", "/v1/products", "/v1/products/fs", "/v1/models"]
    i = 0
    while not stop.is_set():
        p = paths[i % len(paths)]
        i += 1
        try:
            r = s.get(d.base + p, timeout=60)
            stats.add("GET", r.status_code, (200,))
        except requests.RequestException as e:
            stats.add("GET", type(e).__name__, ())
        time.sleep(0.01)


def admin(d, stop, stats):
    s = requests.Session()
    i = 0
    while not stop.is_set():
        i += 1
        try:
            r = s.put(d.base + "/v1/products/churn", json={"object": "part %d" % (i % 7)}, timeout=60)
            stats.add("PUT", r.status_code, (200, 201))
            for j in range(2):
                r = s.post(d.base + "/v1/products/churn/references", data=hd.noise_png(i * 10 + j),
                           headers={"Content-Type": "image/png"}, timeout=120)
                stats.add("POST references", r.status_code, (200,))
            if i % 2:
                r = s.delete(d.base + "/v1/products/churn/references", timeout=60)
                stats.add("DELETE references", r.status_code, (200,))
            else:
                r = s.delete(d.base + "/v1/products/churn", timeout=60)
                stats.add("DELETE product", r.status_code, (204,))
        except requests.RequestException as e:
            stats.add("admin", type(e).__name__, ())
        time.sleep(0.05)


def test_soak(daemons):
    args = ["-o", "queue_length=2"]
    if os.environ.get("HARDEN_MODEL"):
        args += ["--model", "default=" + os.environ["HARDEN_MODEL"]]
    d = daemons(args=args, timeout=600)
    d.create_product("zs", obj="bottle")
    d.create_product("fs", obj="bottle")
    for n in ("ref_00_normal.png", "ref_01_normal.jpg"):
        d.add_ref_ok("fs", hd.fixture(n), "image/png" if n.endswith(".png") else "image/jpeg")

    time.sleep(0.5)
    fds_idle0 = hd.n_fds(d.pid)  # before any client connects
    stop = threading.Event()
    stats = Stats()
    threads = [threading.Thread(target=inspector, args=(d, stop, stats, k)) for k in range(INSPECTORS)]
    threads += [threading.Thread(target=reader, args=(d, stop, stats)),
                threading.Thread(target=admin, args=(d, stop, stats))]
    for t in threads:
        t.start()
    # Warm-up (arenas, caches, thread stacks) before the first reading.
    time.sleep(min(5.0, SECONDS / 5))
    rss0, fds0, thr0 = hd.rss_kib(d.pid), hd.n_fds(d.pid), hd.n_threads(d.pid)
    with stats.lock:
        stats.latency.clear()
        stats.status.clear()
        stats.errors.clear()
    t0 = time.monotonic()
    samples = []
    while time.monotonic() - t0 < SECONDS:
        time.sleep(min(5.0, SECONDS / 10))
        samples.append(hd.rss_kib(d.pid))
    stop.set()
    for t in threads:
        t.join(180)
    took = time.monotonic() - t0
    time.sleep(1.0)  # let the connections the clients closed go
    rss1, fds1, thr1 = hd.rss_kib(d.pid), hd.n_fds(d.pid), hd.n_threads(d.pid)
    asan = hd.is_asan(d.pid)
    d.stop_ok()
    hd.assert_store_clean(d.state_dir)

    total = sum(v for k, v in stats.status.items() if k != "errors")
    n503 = stats.status.get("inspect 503", 0)
    figures = {
        "seconds": round(took, 1), "requests": total, "inspections_200": len(stats.latency),
        "busy_503": n503, "errors": stats.status.get("errors", 0),
        "rss_kib_start": rss0, "rss_kib_end": rss1, "rss_kib_max": max(samples + [rss1]),
        "fds_idle_before": fds_idle0, "fds_start": fds0, "fds_end": fds1, "threads_start": thr0, "threads_end": thr1,
        "p50_ms": round(pct(stats.latency, 50) * 1000, 1),
        "p99_ms": round(pct(stats.latency, 99) * 1000, 1),
        "asan": asan, "statuses": stats.status,
    }
    hd.measured("soak: " + json.dumps(figures, sort_keys=True))
    out = os.environ.get("HARDEN_SOAK_JSON")
    if out:
        with open(out, "w") as f:
            json.dump(figures, f, indent=1, sort_keys=True)
    assert not stats.errors, "unexpected answers: %s" % stats.errors
    assert len(stats.latency) > 0
    assert fds1 <= fds0 + 2, "open fds grew: %d -> %d" % (fds0, fds1)
    assert fds1 <= fds_idle0 + 2, "open fds after the load %d, before it %d" % (fds1, fds_idle0)
    if not asan:
        assert rss1 <= rss0 * 1.25 + 32 * 1024, "RSS grew: %d -> %d KiB" % (rss0, rss1)
