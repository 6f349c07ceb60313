# Products and references live on disk: they survive a clean restart with identical scores,
# and a SIGKILL in the middle of a reference upload leaves either the old or the new product,
# never a torn one.
import json
import os
import random
import re
import threading
import time

import helpers

REFS = ["ref_00_normal.png", "ref_01_normal.png", "ref_05_normal.png", "ref_07_normal.png"]
PROBES = ["02_scratch.png", "03_spot.jpg", "06_crack.png"]


def snapshot(d):
    """Everything a client can see of the products, and their scores on the probe images."""
    products = {p["id"]: p for p in d.get("/v1/products").json()["products"]}
    scores = {(pid, img): d.inspect_ok(pid, img, "?map=none")["score"]
              for pid in products for img in PROBES}
    return products, scores


def test_restart_keeps_products_and_references(daemon):
    d = daemon()
    d.create_product("zero", obj="bottle")
    d.create_product("few", obj="bottle", threshold=0.42)
    d.add_references_multipart("few", REFS[:2])
    d.add_reference("few", "ref_05_normal.jpg")
    d.create_product("custom", obj="circuit board", anomaly_states=["{} with a burn mark"],
                     normal_sentences=["a photo of a clean circuit board."])
    d.add_references_multipart("custom", REFS)
    before_products, before_scores = snapshot(d)
    d.restart()
    after_products, after_scores = snapshot(d)
    assert sorted(after_products) == sorted(before_products) == ["custom", "few", "zero"]
    for pid, p in before_products.items():
        q = after_products[pid]
        for k in ("definition", "references", "threshold", "threshold_source", "prompts",
                  "created", "model"):
            assert q[k] == p[k], "%s.%s: %r before, %r after restart" % (pid, k, p[k], q[k])
        assert all(abs(a - b) <= 1e-6 for a, b in zip(p["reference_scores"], q["reference_scores"]))
    for key, s in before_scores.items():
        assert abs(after_scores[key] - s) <= 1e-6, "%s: %r before, %r after" % (
            key, s, after_scores[key])
    r = d.get("/readyz").json()
    assert r.get("products", 3) == 3
    # A product deleted before a restart stays deleted.
    assert d.delete("/v1/products/zero").status_code == 204
    d.restart()
    assert sorted(p["id"] for p in d.get("/v1/products").json()["products"]) == ["custom", "few"]


def reference_files_exist(state_dir, pid):
    """Every reference listed in the product's definition file is on disk."""
    pdir = os.path.join(state_dir, "products", pid)
    with open(os.path.join(pdir, "product.json")) as f:
        doc = json.load(f)
    refs = doc["references"]
    listed = set()
    for r in refs:
        name = r["file"] if isinstance(r, dict) else r
        path = os.path.normpath(os.path.join(pdir, name))
        assert path.startswith(pdir + os.sep), "reference path escapes the product: %r" % name
        assert os.path.isfile(path), "listed reference %s is missing" % name
        listed.add(path)
    # Nothing else is left behind by a crash (the embedding cache aside): an interrupted
    # upload must not leak its files on every crash.
    leftovers = []
    for base, dirs, files in os.walk(pdir):
        dirs[:] = [x for x in dirs if x != "cache"]
        for f in files:
            p = os.path.join(base, f)
            if p not in listed and p != os.path.join(pdir, "product.json"):
                leftovers.append(os.path.relpath(p, pdir))
    assert not leftovers, "files in the product folder that no reference lists: %s" % leftovers
    return len(refs)


def upload_in_thread(d, pid, files, result):
    def run():
        t0 = time.monotonic()
        try:
            r = d.client().post("/v1/products/%s/references" % pid, files=files, timeout=120)
            result["status"] = r.status_code
            result["body"] = r.text[:300]
        except Exception as e:  # the daemon was killed under it
            result["error"] = repr(e)
        result["seconds"] = time.monotonic() - t0

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_sigkill_during_reference_upload(daemon):
    n_new = 8
    big = ["-o", "max_body_bytes=256MiB", "-o", "max_references=256"]
    d = daemon(*big)
    d.create_product("crash")
    d.add_references_multipart("crash", REFS[:2])
    noise = [helpers.noise_png(1500, 1500, seed=i) for i in range(n_new)]

    def batch(tag):
        # Identical bytes would be refused as duplicates: each round gets its own copies.
        return [("img%d" % i, ("noise%d.png" % i, helpers.png_with_comment(png, tag), "image/png"))
                for i, png in enumerate(noise)]

    files = batch("first")
    mib = sum(len(f[1][1]) for f in files) / 2**20

    # One complete upload first: how long the whole thing takes.
    result = {}
    upload_in_thread(d, "crash", files, result).join(300)
    assert result.get("status") == 200, result
    full = result["seconds"]
    count = d.get("/v1/products/crash").json()["references"]
    assert count == 2 + n_new
    helpers.measured("multipart upload of %d PNGs (%.1f MiB): %.2f s" % (n_new, mib, full))

    rng = random.Random(20261123)
    outcomes = []
    # Kill moments spread from early in the upload to around its commit.
    windows = [(0.1, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 0.97), (0.97, 1.1)]
    for round_, (lo, hi) in enumerate(windows):
        delay = full * rng.uniform(lo, hi)
        result = {}
        t = upload_in_thread(d, "crash", batch("round %d" % round_), result)
        time.sleep(delay)
        d.kill()
        t.join(60)
        assert not t.is_alive(), "the upload did not end after SIGKILL"
        d.start()
        r = d.get("/v1/products/crash")
        assert r.status_code == 200, "product lost after SIGKILL: %d %s\n%s" % (
            r.status_code, r.text, d.log_tail())
        now = r.json()["references"]
        outcomes.append((round(delay, 2), result.get("status", "killed"), count, now))
        assert now in (count, count + n_new), "references %d after SIGKILL; expected %d or %d" % (
            now, count, count + n_new)
        if result.get("status") == 200:
            assert now == count + n_new, "the upload was acknowledged but is gone"
        assert reference_files_exist(d.state_dir, "crash") == now
        j = d.inspect_ok("crash", "02_scratch.png", "?map=none")
        assert j["mode"] == "few-shot"
        count = now
    helpers.measured("SIGKILL rounds (delay s, upload status, refs before, refs after): %s"
                     % outcomes)


def text_cache_lines(d):
    """{product id: (prompts, from the cache)} and the text-cache events of the latest run."""
    per_product, events = {}, []
    for line in d.log_lines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event") == "product_text":
            m = re.match(r"product (\S+): (\d+) prompts, (\d+) from the text cache", rec["msg"])
            assert m, rec["msg"]
            per_product[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        elif rec.get("event") == "text_cache":
            events.append(rec)
    return per_product, events


def test_prompt_embeddings_are_cached_in_the_store(daemon):
    d = daemon()
    d.create_product("a", obj="bottle")
    text, _ = text_cache_lines(d)
    n, cached = text["a"]
    assert n > 100 and cached == 0, text
    # Another product with the same object word encodes nothing; one extra sentence, only it.
    d.create_product("b", obj="bottle")
    d.create_product("c", obj="bottle", anomaly_sentences=["a photo of a bottle with a chip."])
    text, _ = text_cache_lines(d)
    assert text["b"] == (n, n), text
    assert text["c"] == (n + 1, n), text
    scores = {img: d.inspect_ok("a", img, "?map=none")["score"] for img in PROBES}
    cache_dir = os.path.join(d.state_dir, "text-cache")
    files = os.listdir(cache_dir)
    assert len(files) == 1 and files[0].endswith(".bin"), files

    # A restart takes every prompt from the cache and scores the same.
    d.restart()
    text, events = text_cache_lines(d)
    assert text == {"a": (n, n), "b": (n, n), "c": (n + 1, n + 1)}, text
    # One embedding per distinct token sequence (the default templates repeat one sentence).
    held = [int(m.group(1)) for e in events
            for m in [re.search(r"(\d+) prompt embeddings cached", e["msg"])] if m]
    assert len(held) == 1 and n // 2 < held[0] <= n + 1, events
    for img, s in scores.items():
        assert abs(d.inspect_ok("a", img, "?map=none")["score"] - s) <= 1e-6

    # A damaged record: the daemon says so, cuts it off, encodes what it lost, scores the same.
    d.stop_ok()
    path = os.path.join(cache_dir, files[0])
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2)
        byte = f.read(1)
        f.seek(size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    d.start()
    text, events = text_cache_lines(d)
    assert any(e["level"] == "warn" and "damaged" in e["msg"] for e in events), events
    assert 0 < text["a"][1] < n, text
    for img, s in scores.items():
        assert abs(d.inspect_ok("a", img, "?map=none")["score"] - s) <= 1e-5
    assert os.path.getsize(path) == size, "the re-encoded prompts were not added back"

    # The file gone: everything encoded again, same scores.
    d.stop_ok()
    os.unlink(path)
    d.start()
    text, _ = text_cache_lines(d)
    assert text["a"] == (n, 0) and text["b"] == (n, n), text
    for img, s in scores.items():
        assert abs(d.inspect_ok("a", img, "?map=none")["score"] - s) <= 1e-5
