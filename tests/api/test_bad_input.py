# Bad input of every kind gets its documented status and error code, fast, and the daemon keeps
# serving afterwards: damaged and oversized images, wrong types, bad JSON, body limits, unknown
# products, path-like ids, authentication and roles, unknown routes and methods.
import os
import time

import pytest

import helpers
from helpers import assert_error, fixture_image, raw_request

PNG = "02_scratch.png"
JPG = "02_scratch.jpg"


@pytest.fixture(scope="module")
def d(module_daemon):
    module_daemon.create_product("bottle")
    return module_daemon


def inspect_and_reference(d, data, ctype):
    """The same body sent to inspect and as a reference: both answers."""
    a = d.inspect("bottle", data, ctype)
    b = d.post("/v1/products/bottle/references", data=data, headers={"Content-Type": ctype})
    return a, b


def expect(d, resps, status, codes):
    for r in resps:
        assert_error(r, status, codes)
    d.assert_serving()
    assert d.get("/v1/products/bottle").json()["references"] == 0, "a bad image was added"


# ---------------------------------------------------------------------------------------------
# Images


def test_corrupt_image_bytes(d):
    # Bytes that contain no 0xFF: after a JPEG signature they can never form a marker (random
    # bytes sometimes formed a frame header claiming a huge size: 413, not 400).
    junk = bytes((i * 37 + 11) % 255 for i in range(5000))
    expect(d, inspect_and_reference(d, junk, "image/png"), 400, "bad_image")
    expect(d, inspect_and_reference(d, junk, "image/jpeg"), 400, "bad_image")
    expect(d, inspect_and_reference(d, b"\x89PNG\r\n\x1a\n" + junk, "image/png"), 400, "bad_image")
    expect(d, inspect_and_reference(d, b"\xff\xd8\xff" + junk, "image/jpeg"), 400, "bad_image")


@pytest.mark.parametrize("name", [PNG, JPG])
@pytest.mark.parametrize("keep", [0.5, 0.9, 0.1])
def test_truncated_image(d, name, keep):
    data = fixture_image(name)
    cut = data[:int(len(data) * keep)]
    expect(d, inspect_and_reference(d, cut, helpers.content_type_of(name)), 400, "bad_image")


def test_zero_byte_body(d):
    for ctype in ("image/png", "image/jpeg"):
        expect(d, inspect_and_reference(d, b"", ctype), 400, ("bad_image", "bad_request"))


def test_png_type_with_jpeg_bytes_and_back(d):
    # The bytes decide (or the mismatch is refused cleanly): never a crash, never a 500.
    for data, ctype in ((fixture_image(JPG), "image/png"), (fixture_image(PNG), "image/jpeg")):
        r = d.inspect("bottle", data, ctype)
        assert r.status_code in (200, 400, 415), r.text
        if r.status_code != 200:
            assert_error(r, r.status_code, ("bad_image", "unsupported_media_type"))
        d.assert_serving()


def huge_images():
    return {
        "png_crafted_100000x100000": (helpers.png_header(100000, 100000), "image/png"),
        "png_patched_100000x100000": (helpers.png_patch_size(fixture_image(PNG), 100000, 100000),
                                      "image/png"),
        "jpeg_patched_65000x65000": (helpers.jpeg_patch_size(fixture_image(JPG), 65000, 65000),
                                     "image/jpeg"),
    }


@pytest.mark.parametrize("kind", sorted(huge_images()))
def test_huge_dimensions_rejected_fast(d, kind):
    data, ctype = huge_images()[kind]
    for path in ("/v1/products/bottle/inspect", "/v1/products/bottle/references"):
        t0 = time.monotonic()
        r = d.post(path, data=data, headers={"Content-Type": ctype})
        dt = time.monotonic() - t0
        assert_error(r, 413, "too_large")
        assert dt < 2.0, "%s took %.2f s to refuse" % (path, dt)
    d.assert_serving()


def test_small_max_pixels(daemon):
    d = daemon("-o", "max_pixels=10000")
    d.create_product("px")
    big = fixture_image(PNG)  # 200 x 160 = 32000 pixels
    assert_error(d.inspect("px", big, "image/png"), 413, "too_large")
    assert_error(d.post("/v1/products/px/references", data=fixture_image(JPG),
                        headers={"Content-Type": "image/jpeg"}), 413, "too_large")
    d.assert_serving()
    small = fixture_image("01_normal.png")  # 96 x 96 = 9216 pixels
    assert d.inspect("px", small, "image/png").status_code == 200
    assert d.add_reference("px", "01_normal.png")["references"] == 1


def test_multipart_with_bad_parts(d):
    png = fixture_image("ref_00_normal.png")
    cases = {
        "text part": [("a", ("a.png", png, "image/png")),
                      ("note", ("n.txt", b"hello", "text/plain"))],
        "field part": [("a", ("a.png", png, "image/png")), ("comment", (None, b"just a field"))],
        "empty part": [("a", ("a.png", png, "image/png")), ("b", ("b.png", b"", "image/png"))],
    }
    for what, files in cases.items():
        r = d.post("/v1/products/bottle/references", files=files)
        assert r.status_code in (400, 415), "%s: %d %s" % (what, r.status_code, r.text[:200])
        assert_error(r, r.status_code, ("bad_image", "bad_request", "unsupported_media_type"))
        d.assert_serving()
        assert d.get("/v1/products/bottle").json()["references"] == 0, what
    boundary = "xyzzy"
    for body in (b"--xyzzy--\r\n", b"", b"--xyzzy\r\nContent-Type: image/png\r\n\r\n" + png[:100],
                 b"no boundary here at all"):
        r = d.post("/v1/products/bottle/references", data=body,
                   headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
        assert_error(r, 400, ("bad_request", "bad_image"))
        d.assert_serving()
    r = d.post("/v1/products/bottle/references", data=b"--x--\r\n",
               headers={"Content-Type": "multipart/form-data"})  # no boundary parameter
    assert_error(r, 400, ("bad_request", "bad_image"))
    d.assert_serving()
    assert d.get("/v1/products/bottle").json()["references"] == 0


# ---------------------------------------------------------------------------------------------
# Content types, JSON


def test_wrong_content_type(d):
    data = fixture_image(PNG)
    for ctype in ("text/plain", "application/octet-stream", "image/gif", "application/json"):
        expect(d, inspect_and_reference(d, data, ctype), 415, "unsupported_media_type")
    r = d.put("/v1/products/bottle", data=b'{"object": "bottle"}',
              headers={"Content-Type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")
    d.assert_serving()


def test_missing_content_type(d):
    for r in (d.inspect("bottle", fixture_image(PNG), ctype=None),
              d.put("/v1/products/bottle", data=b'{"object": "bottle"}')):
        assert r.status_code in (400, 415), r.text
        assert_error(r, r.status_code, ("bad_request", "unsupported_media_type"))
    d.assert_serving()


@pytest.mark.parametrize("body", [
    b'{"object": "bottle"', b'{"object": bottle}', b"", b"{'object': 'bottle'}",
    b'{"object": "bottle"} trailing', b"\xff\xfe\x00", b'{"object": "bo\xfftle"}',
], ids=["unclosed", "bare-word", "empty", "single-quotes", "trailing", "binary", "bad-utf8"])
def test_malformed_json(d, body):
    r = d.put("/v1/products/bottle", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400, "bad_json")
    d.assert_serving()
    assert d.get("/v1/products/bottle").json()["definition"]["object"] == "bottle"


@pytest.mark.parametrize("body", [
    {"object": "bottle", "colour": "green"},
    {"object": 5},
    {"object": None},
    {},
    {"normal_states": ["{}"]},
    {"object": "bottle", "normal_states": "a {}"},
    {"object": "bottle", "normal_states": [1, 2]},
    {"object": "bottle", "threshold": "high"},
    {"object": "bottle", "threshold": 1.5},
    {"object": "bottle", "threshold": -0.1},
    {"object": "bottle", "replace_templates": "yes"},
    {"object": "bottle", "model": "no-such-model"},
    [{"object": "bottle"}],
    "bottle",
], ids=["unknown-key", "object-int", "object-null", "empty", "no-object", "states-string",
        "states-ints", "threshold-word", "threshold-high", "threshold-negative",
        "flag-string", "unknown-model", "array", "string"])
def test_invalid_definition(d, body):
    r = d.put("/v1/products/bottle", json=body)
    assert_error(r, 400, "invalid")
    d.assert_serving()
    assert d.get("/v1/products/bottle").json()["definition"]["object"] == "bottle"


# ---------------------------------------------------------------------------------------------
# Body size


def test_oversized_body(daemon):
    d = daemon("-o", "max_body_bytes=1MiB")
    d.create_product("big")
    two_mib = os.urandom(2 << 20)
    for path, ctype in (("/v1/products/big/inspect", "image/png"),
                        ("/v1/products/big/references", "image/jpeg"),
                        ("/v1/products/big", "application/json")):
        method = "PUT" if path == "/v1/products/big" else "POST"
        t0 = time.monotonic()
        r = raw_request(d.port, method, path, {"Content-Type": ctype}, body=two_mib)
        assert_error(r, 413, "too_large")
        assert time.monotonic() - t0 < 5
        d.assert_serving()
        # Without a Content-Length (chunked), counted as it arrives.
        r = raw_request(d.port, method, path, {"Content-Type": ctype},
                        chunks=(two_mib[i:i + 65536] for i in range(0, len(two_mib), 65536)))
        assert_error(r, 413, "too_large")
        d.assert_serving()
    # Multipart counts as a whole.
    part = helpers.noise_png(400, 400, seed=1, level=0)  # ~480 KB each
    files = [("i%d" % i, ("%d.png" % i, part, "image/png")) for i in range(3)]
    assert_error(d.post("/v1/products/big/references", files=files), 413, "too_large")
    d.assert_serving()
    assert d.get("/v1/products/big").json()["references"] == 0
    # Just under the limit still works.
    assert d.inspect("big", part, "image/png").status_code == 200


# ---------------------------------------------------------------------------------------------
# Unknown products and ids


def test_unknown_product(d):
    data = fixture_image(PNG)
    for r in (d.get("/v1/products/nope"),
              d.delete("/v1/products/nope"),
              d.inspect("nope", data, "image/png"),
              d.post("/v1/products/nope/references", data=data,
                     headers={"Content-Type": "image/png"}),
              d.delete("/v1/products/nope/references")):
        assert_error(r, 404, "not_found")
    d.assert_serving()


def tree(root):
    out = set()
    for base, dirs, files in os.walk(root):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(base, n), root))
    return out


BAD_IDS = ["..", "%2e%2e", "a%2Fb", "..%2F..%2Fescaped", ".hidden", "-dash", "_under", "a%20b",
           "a%00b", "x" * 65, "%C3%A9t%C3%A9", "a%5Cb", "~root"]


def test_path_like_ids(daemon):
    d = daemon()
    d.create_product("ok")
    workdir = os.path.dirname(d.state_dir)
    state_rel = os.path.basename(d.state_dir)

    def outside():
        return {p for p in tree(workdir) if p != state_rel and
                not p.startswith(state_rel + os.sep) and not p.endswith(".log")}

    outside_before = outside()
    state_before = tree(d.state_dir)
    body = b'{"object": "bottle"}'
    png = fixture_image(PNG)
    for bad in BAD_IDS:
        for method, suffix, hdrs, data in (
                ("PUT", "", {"Content-Type": "application/json"}, body),
                ("GET", "", {}, b""),
                ("POST", "/references", {"Content-Type": "image/png"}, png),
                ("POST", "/inspect", {"Content-Type": "image/png"}, png),
                ("DELETE", "/references", {}, b""),
                ("DELETE", "", {}, b"")):
            r = raw_request(d.port, method, "/v1/products/" + bad + suffix, hdrs, body=data)
            assert r.status_code in (400, 404), "%s %s -> %d %s" % (method, bad + suffix,
                                                                    r.status_code, r.text[:200])
            assert_error(r, r.status_code, ("bad_request", "invalid", "not_found"))
        d.assert_serving()
    new_outside = outside() - outside_before
    assert not new_outside, "files appeared outside the state dir: %s" % sorted(new_outside)
    new_state = tree(d.state_dir) - state_before
    assert not new_state, "files appeared in the state dir: %s" % sorted(new_state)
    assert [p["id"] for p in d.get("/v1/products").json()["products"]] == ["ok"]
    # The longest valid id is fine.
    longest = "a" + "b" * 63
    assert d.put("/v1/products/" + longest, json={"object": "bottle"}).status_code == 201
    assert d.get("/v1/products/" + longest).status_code == 200
    for ok_id in ("A.b_c-9", "9lives"):
        assert d.put("/v1/products/" + ok_id, json={"object": "bottle"}).status_code == 201


# ---------------------------------------------------------------------------------------------
# Authentication and roles


def test_missing_and_wrong_key(daemon, keys):
    path, admin, insp = keys
    d = daemon("--keys-file", path, key=admin)
    d.create_product("sec")
    png = fixture_image(PNG)
    for key in (None, "wrong-" + "0" * 32, admin[:-1], admin + "x"):
        c = d.client(key=key)
        for r in (c.get("/v1/models"), c.get("/v1/products"), c.get("/v1/products/sec"),
                  c.put("/v1/products/sec", json={"object": "bottle"}),
                  c.delete("/v1/products/sec"),
                  c.post("/v1/products/sec/inspect", data=png,
                         headers={"Content-Type": "image/png"}),
                  c.post("/v1/products/sec/references", data=png,
                         headers={"Content-Type": "image/png"}),
                  c.delete("/v1/products/sec/references")):
            assert_error(r, 401, "unauthorized")
        c.close()
    c = d.client(key=None)
    for h in ({"Authorization": "Basic " + "YWRtaW46eA=="}, {"Authorization": "Bearer"},
              {"Authorization": admin}, {"Authorization": "Bearer  " + admin + " extra"}):
        assert_error(c.get("/v1/products", headers=h), 401, "unauthorized")
    # The unauthenticated endpoints stay open.
    for p in ("/healthz", "/readyz", "/metrics"):
        assert c.get(p).status_code == 200, p
    c.close()
    d.assert_serving()
    assert d.get("/v1/products/sec").status_code == 200
    log = "\n".join(d.log_lines())
    assert admin not in log and insp not in log, "an API key appears in the log"


def test_inspect_key_is_read_and_inspect_only(daemon, keys):
    path, admin, insp = keys
    d = daemon("--keys-file", path, key=admin)
    d.create_product("role")
    d.add_reference("role", "ref_00_normal.png")
    png = fixture_image(PNG)
    c = d.client(key=insp)
    assert_error(c.put("/v1/products/role", json={"object": "bottle"}), 403, "forbidden")
    assert_error(c.put("/v1/products/new", json={"object": "bottle"}), 403, "forbidden")
    assert_error(c.delete("/v1/products/role"), 403, "forbidden")
    assert_error(c.post("/v1/products/role/references", data=png,
                        headers={"Content-Type": "image/png"}), 403, "forbidden")
    assert_error(c.delete("/v1/products/role/references"), 403, "forbidden")
    assert c.get("/v1/models").status_code == 200
    assert c.get("/v1/products").status_code == 200
    assert c.get("/v1/products/role").json()["references"] == 1
    r = c.post("/v1/products/role/inspect", data=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 200 and r.json()["mode"] == "few-shot", r.text
    c.close()
    assert d.get("/v1/products/new").status_code == 404
    # The admin key does everything.
    assert d.delete("/v1/products/role/references").status_code == 200
    assert d.delete("/v1/products/role").status_code == 204


# ---------------------------------------------------------------------------------------------
# Routing


def test_unknown_route_and_wrong_method(d):
    c = d.http
    for path in ("/", "/nope", "/v1", "/v2/products", "/v1/product", "/v1/products/bottle/x",
                 "/v1/products/bottle/inspect/more", "/healthz/x", "/v1/models/default/x"):
        assert_error(c.get(path, route_miss=True), 404, "not_found")
    for method, path in (("POST", "/healthz"), ("DELETE", "/readyz"), ("PUT", "/metrics"),
                         ("POST", "/v1/models"), ("POST", "/v1/products"),
                         ("DELETE", "/v1/products"), ("PATCH", "/v1/products/bottle"),
                         ("POST", "/v1/products/bottle"), ("GET", "/v1/products/bottle/inspect"),
                         ("PUT", "/v1/products/bottle/references"),
                         ("GET", "/v1/products/bottle/references")):
        r = c.request(method, path, route_miss=True, data=b"{}",
                      headers={"Content-Type": "application/json"})
        assert_error(r, 405, "method_not_allowed")
    d.assert_serving()
