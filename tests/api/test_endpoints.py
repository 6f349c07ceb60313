# The routes of api/openapi.yaml doing their normal job: health, readiness, metrics, models,
# product CRUD, references (raw and multipart) and inspections with their map options.
import hashlib
import math
import os
import re

import numpy as np

import helpers
from helpers import assert_error, decode_map, fixture_image, png_size, jpeg_size

REFS = ["ref_00_normal.png", "ref_01_normal.png", "ref_05_normal.png", "ref_07_normal.png"]


def test_healthz_and_readyz(daemon):
    d = daemon()
    for path in ("/healthz", "/readyz"):
        r = d.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("application/json"), r.headers
        assert isinstance(r.json(), dict)


def test_readyz_counts_products_after_restart(daemon):
    d = daemon()
    d.create_product("p1")
    d.add_reference("p1", REFS[0])
    d.restart()
    r = d.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    # Readiness includes "products loaded": the product must be served right away.
    assert d.get("/v1/products/p1").status_code == 200, body


# ---------------------------------------------------------------------------------------------
# /metrics

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


def parse_prometheus(text):
    """{family: {"type": t, "samples": [(name, labels, value)]}}; asserts the text format."""
    fams, types = {}, {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip()
            continue
        m = SAMPLE.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        name, labels_s, value = m.group(1), m.group(3) or "", m.group(4)
        labels = dict(LABEL.findall(labels_s))
        assert LABEL.sub("", labels_s) == "", "bad labels in %r" % line
        v = float(value)  # also accepts +Inf/NaN spellings
        fam = name
        for suffix in ("_bucket", "_sum", "_count", "_total"):
            if name.endswith(suffix) and name[:-len(suffix)] in types:
                fam = name[:-len(suffix)]
        if fam not in types and name in types:
            fam = name
        fams.setdefault(fam, {"type": types.get(fam, "untyped"), "samples": []})
        fams[fam]["samples"].append((name, labels, v))
    return fams


def families_of(fams, kind):
    return {k: v for k, v in fams.items() if v["type"] == kind}


def test_metrics(daemon):
    d = daemon()
    d.create_product("m1")
    d.add_reference("m1", REFS[0])
    d.create_product("m2")
    d.inspect_ok("m1", "02_scratch.png")
    assert d.get("/v1/products/nope").status_code == 404
    r = d.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers["Content-Type"]
    fams = parse_prometheus(r.text)

    # Request counters by route template and status.
    found_ok = found_404 = False
    for name, fam in families_of(fams, "counter").items():
        for _, labels, v in fam["samples"]:
            route = labels.get("route", labels.get("path", ""))
            if labels.get("status", labels.get("code")) == "200" and "inspect" in route:
                found_ok = found_ok or v >= 1
                assert "m1" not in route, "route label must be the template, not the id: %r" % route
            if labels.get("status", labels.get("code")) == "404" and "products" in route:
                found_404 = found_404 or v >= 1
    assert found_ok, "no counter with route=inspect, status=200 >= 1"
    assert found_404, "no counter with a products route and status=404"

    # Latency histogram buckets (cumulative, ending at +Inf == _count).
    hists = families_of(fams, "histogram")
    lat = [f for n, f in hists.items() if any("route" in s[1] for s in f["samples"])]
    assert lat, "no latency histogram by route: %s" % sorted(hists)
    samples = lat[0]["samples"]
    buckets = [s for s in samples
               if s[0].endswith("_bucket") and "inspect" in s[1].get("route", "")]
    assert buckets and any(s[1].get("le") == "+Inf" for s in buckets), buckets[:3]
    by_method = {}
    for name, labels, v in buckets:
        key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        by_method.setdefault(key, []).append((float(labels["le"]), v))
    for key, bs in by_method.items():
        bs.sort()
        assert all(a[1] <= b[1] for a, b in zip(bs, bs[1:])), "buckets not cumulative: %s" % bs
        assert bs[-1][0] == math.inf and bs[-1][1] >= 1

    # Per-stage inference time.
    stages = set()
    for f in hists.values():
        for _, labels, _ in f["samples"]:
            if "stage" in labels:
                stages.add(labels["stage"])
    for f in families_of(fams, "summary").values():
        for _, labels, _ in f["samples"]:
            if "stage" in labels:
                stages.add(labels["stage"])
    assert {"decode", "image", "windows"} <= stages, "stages in metrics: %s" % sorted(stages)

    gauges = families_of(fams, "gauge")

    def gauge(*words):
        for name, f in gauges.items():
            if all(w in name for w in words):
                return name, sum(s[2] for s in f["samples"])
        raise AssertionError("no gauge named like %s in %s" % (words, sorted(gauges)))

    name, depth = gauge("queue", "depth")
    assert depth == 0, "%s = %s while idle" % (name, depth)
    name, products = gauge("products")
    assert products == 2, "%s = %s, expected 2 products" % (name, products)
    name, refs = gauge("references")
    assert refs == 1, "%s = %s, expected 1 reference" % (name, refs)


# ---------------------------------------------------------------------------------------------
# /v1/models


def test_models(daemon):
    d = daemon()
    r = d.get("/v1/models")
    assert r.status_code == 200, r.text
    models = r.json()["models"]
    assert len(models) == 1
    m = models[0]
    assert m["name"] == "default"
    assert m["test_model"] is True
    warning = m.get("warning")
    assert isinstance(warning, str) and "meaningless" in warning.lower(), warning
    weights = os.path.join(helpers.TINY, "weights.safetensors")
    assert m["checksum"].lower() == hashlib.sha256(helpers.read_file(weights)).hexdigest()
    assert (m["image_size"], m["patch_size"], m["width"]) == (96, 16, 64), m
    assert m["layers"] == 2 and m["heads"] == 2 and m["embed_dim"] == 32, m
    assert m["quick_gelu"] is False
    assert m["dtype"].upper() == "F16", m["dtype"]


# ---------------------------------------------------------------------------------------------
# Products


def test_product_crud(daemon):
    d = daemon()
    r = d.put("/v1/products/pcb-rev7", json={"object": "printed circuit board",
                                             "anomaly_states": ["{} with bad soldering"]})
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["id"] == "pcb-rev7"
    assert p["definition"]["object"] == "printed circuit board"
    assert p["references"] == 0 and p["model"] == "default"
    assert p["threshold"] == 0.5 and p["threshold_source"] == "default"
    created = p["created"]

    r = d.put("/v1/products/pcb-rev7", json={"object": "circuit board", "threshold": 0.7})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["definition"]["object"] == "circuit board"
    assert abs(p["threshold"] - 0.7) < 1e-6 and p["threshold_source"] == "manual"
    assert p["created"] == created

    r = d.put("/v1/products/pcb-rev7", data=b'{"object": "circuit board", "threshold": 0.7}',
              headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200, r.text

    r = d.get("/v1/products/pcb-rev7")
    assert r.status_code == 200
    assert r.json()["definition"]["object"] == "circuit board"
    assert abs(r.json()["threshold"] - 0.7) < 1e-6

    d.create_product("other")
    r = d.get("/v1/products")
    assert r.status_code == 200
    assert sorted(p["id"] for p in r.json()["products"]) == ["other", "pcb-rev7"]

    r = d.delete("/v1/products/pcb-rev7")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_error(d.get("/v1/products/pcb-rev7"), 404, "not_found")
    assert_error(d.delete("/v1/products/pcb-rev7"), 404, "not_found")
    assert [p["id"] for p in d.get("/v1/products").json()["products"]] == ["other"]


def test_product_prompt_customisation_changes_prompts_and_score(daemon):
    d = daemon()
    plain = d.create_product("plain")
    custom = d.create_product("custom", anomaly_states=["{} with a dent", "dented {}"],
                              normal_sentences=["a photo of a shiny bottle."])
    assert custom["prompts"]["anomalous"] > plain["prompts"]["anomalous"], (custom, plain)
    assert custom["prompts"]["normal"] == plain["prompts"]["normal"] + 1
    a = d.inspect_ok("plain", "03_spot.png", "?map=none")["score"]
    b = d.inspect_ok("custom", "03_spot.png", "?map=none")["score"]
    assert a != b


def test_threshold_manual_auto_and_default(daemon):
    d = daemon()
    d.create_product("t", threshold=0.999)
    r = d.inspect_ok("t", "06_crack.png", "?map=none")
    assert abs(r["threshold"] - 0.999) < 1e-6 and r["anomalous"] == (r["score"] >= r["threshold"])
    d.create_product("t", threshold=0.0)
    r = d.inspect_ok("t", "06_crack.png", "?map=none")
    assert r["threshold"] == 0.0 and r["anomalous"] is True

    d.create_product("t")  # auto: 0.5 while fewer than 2 references
    d.add_reference("t", REFS[0])
    p = d.get("/v1/products/t").json()
    assert p["threshold"] == 0.5 and p["threshold_source"] == "default"
    assert p["reference_scores"] == [] and p["suggested_threshold"] is None

    for name in REFS[1:]:
        d.add_reference("t", name)
    p = d.get("/v1/products/t").json()
    assert len(p["reference_scores"]) == 4, p
    assert all(0 <= s <= 1 for s in p["reference_scores"])
    assert p["threshold_source"] == "auto"
    assert isinstance(p["suggested_threshold"], float)
    assert p["threshold"] == p["suggested_threshold"]
    r = d.inspect_ok("t", "06_crack.png", "?map=none")
    assert r["threshold"] == p["threshold"] and r["anomalous"] == (r["score"] >= r["threshold"])


# ---------------------------------------------------------------------------------------------
# References


def test_references_raw_png_and_jpeg(daemon):
    d = daemon()
    d.create_product("r")
    r = d.post("/v1/products/r/references", data=fixture_image("ref_00_normal.png"),
               headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    assert r.json()["references"] == 1 and r.json()["added"] == 1
    r = d.post("/v1/products/r/references", data=fixture_image("ref_01_normal.jpg"),
               headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    assert r.json()["references"] == 2 and r.json()["added"] == 1
    assert r.json()["product"] == "r"
    assert d.get("/v1/products/r").json()["references"] == 2
    assert d.inspect_ok("r", "02_scratch.png", "?map=none")["mode"] == "few-shot"


def test_references_multipart_then_raw_then_clear(daemon):
    d = daemon()
    d.create_product("mp")
    zero = d.inspect_ok("mp", "03_spot.png", "?map=none")
    assert zero["mode"] == "zero-shot"
    r = d.add_references_multipart("mp", REFS[:3])
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 3 and r.json()["references"] == 3
    r = d.post("/v1/products/mp/references", data=fixture_image(REFS[3]),
               headers={"Content-Type": "image/png"})
    assert r.status_code == 200 and r.json()["references"] == 4, r.text
    few = d.inspect_ok("mp", "03_spot.png", "?map=none")
    assert few["mode"] == "few-shot"
    assert few["score"] != zero["score"]

    r = d.delete("/v1/products/mp/references")
    assert r.status_code == 200, r.text
    assert d.get("/v1/products/mp").json()["references"] == 0
    again = d.inspect_ok("mp", "03_spot.png", "?map=none")
    assert again["mode"] == "zero-shot"
    assert abs(again["score"] - zero["score"]) <= 1e-6


def test_put_keeps_references(daemon):
    d = daemon()
    d.create_product("keep")
    d.add_references_multipart("keep", REFS[:2])
    r = d.put("/v1/products/keep", json={"object": "bottle", "threshold": 0.3})
    assert r.status_code == 200 and r.json()["references"] == 2, r.text


def test_references_limit_is_conflict_and_all_or_nothing(daemon):
    d = daemon("-o", "max_references=4")
    d.create_product("lim")
    r = d.add_references_multipart("lim", REFS[:2])
    assert r.status_code == 200 and r.json()["references"] == 2, r.text
    assert_error(d.add_references_multipart("lim", REFS[1:4]), 409, "conflict")
    d.assert_serving()
    assert d.get("/v1/products/lim").json()["references"] == 2
    # One bad part and none is added.
    files = [("a", ("a.png", fixture_image(REFS[2]), "image/png")),
             ("b", ("b.png", b"\x89PNG\r\n\x1a\nnot really", "image/png"))]
    assert_error(d.post("/v1/products/lim/references", files=files), 400, "bad_image")
    d.assert_serving()
    assert d.get("/v1/products/lim").json()["references"] == 2
    d.add_references_multipart("lim", REFS[2:4])
    assert_error(d.post("/v1/products/lim/references", data=fixture_image(REFS[0]),
                        headers={"Content-Type": "image/png"}), 409, "conflict")
    d.assert_serving()
    assert d.get("/v1/products/lim").json()["references"] == 4


# ---------------------------------------------------------------------------------------------
# Inspections


def test_inspect_response_shape(daemon):
    d = daemon()
    d.create_product("shape")
    data = fixture_image("02_scratch.png")
    w, h = png_size(data)
    r = d.inspect("shape", data, "image/png")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    j = r.json()
    assert j["product"] == "shape" and j["model"] == "default"
    assert isinstance(j["score"], float) and 0 <= j["score"] <= 1
    assert j["zero_shot_score"] == j["score"]
    assert j["threshold"] == 0.5
    assert j["anomalous"] == (j["score"] >= j["threshold"])
    assert j["mode"] == "zero-shot"
    assert j["image"] == {"width": w, "height": h}
    png = decode_map(j)
    assert (png.width, png.height, png.bit_depth) == (w, h, 16)
    assert png.pixels.max() > 0, "all-zero map"
    t = j["timing_ms"]
    for k in ("decode", "preprocess", "image", "windows", "score", "map", "queue", "total"):
        assert isinstance(t.get(k), (int, float)) and t[k] >= 0, (k, t)
    assert t["total"] >= t["image"] + t["windows"] - 1e-3


def test_inspect_jpeg(daemon):
    d = daemon()
    d.create_product("jpg")
    data = fixture_image("03_spot.jpg")
    j = d.inspect("jpg", data, "image/jpeg").json()
    assert j["image"] == dict(zip(("width", "height"), jpeg_size(data)))
    png = decode_map(j)
    assert (png.width, png.height) == jpeg_size(data)


def test_inspect_map_none(daemon):
    d = daemon()
    d.create_product("n")
    j = d.inspect_ok("n", "02_scratch.png", "?map=none")
    assert j.get("map") is None, "map=none still sent a map"
    full = d.inspect_ok("n", "02_scratch.png")
    assert abs(j["score"] - full["score"]) <= 1e-6


def test_inspect_map_png8_matches_png16(daemon):
    d = daemon()
    d.create_product("b8")
    m16 = decode_map(d.inspect_ok("b8", "04_missing.png", "?map=png16"))
    m8 = decode_map(d.inspect_ok("b8", "04_missing.png", "?map=png8"))
    assert m16.bit_depth == 16 and m8.bit_depth == 8
    assert m8.pixels.shape == m16.pixels.shape
    # Both are round(map * (2^bits - 1)) of the same map.
    expect8 = np.round(m16.pixels.astype(np.float64) / 65535.0 * 255.0)
    assert np.abs(m8.pixels.astype(np.float64) - expect8).max() <= 1


def test_inspect_map_size_model_vs_image(daemon):
    d = daemon()
    d.create_product("ms")
    for name in ("06_crack.png", "00_normal.jpg"):
        data = fixture_image(name)
        size = png_size(data) if name.endswith(".png") else jpeg_size(data)
        img = decode_map(d.inspect_ok("ms", name))
        assert (img.width, img.height) == size
        img2 = decode_map(d.inspect_ok("ms", name, "?map_size=image"))
        assert (img2.width, img2.height) == size and np.array_equal(img.pixels, img2.pixels)
        model = decode_map(d.inspect_ok("ms", name, "?map_size=model"))
        assert (model.width, model.height) == (96, 96)


def test_inspect_smooth(daemon):
    d = daemon()
    d.create_product("sm")
    raw = decode_map(d.inspect_ok("sm", "06_crack.png", "?map_size=model"))
    zero = decode_map(d.inspect_ok("sm", "06_crack.png", "?map_size=model&smooth=0"))
    smooth = decode_map(d.inspect_ok("sm", "06_crack.png", "?map_size=model&smooth=4"))
    assert np.array_equal(raw.pixels, zero.pixels)
    assert not np.array_equal(raw.pixels, smooth.pixels)
    # A blur cannot widen the range of values.
    assert smooth.pixels.max() <= raw.pixels.max() and smooth.pixels.min() >= raw.pixels.min()


def test_inspect_bad_query_parameters(daemon):
    d = daemon()
    d.create_product("q")
    data = fixture_image("01_normal.png")
    for query in ("?map=jpeg", "?map_size=huge", "?smooth=-1", "?smooth=65", "?smooth=abc"):
        r = d.inspect("q", data, "image/png", query)
        assert_error(r, 400, ("bad_request", "invalid"))
        d.assert_serving()
