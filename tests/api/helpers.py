# Shared pieces of the black-box API tests: the daemon process wrapper, an HTTP client that
# records every route it touches (for the contract check), raw-socket HTTP for requests that
# `requests` would rewrite, and small pure-python readers/writers for PNG, JPEG headers and
# safetensors, so that the tests depend on nothing but the binaries under test.
import base64
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import time
import zlib

import numpy as np
import requests

FIXTURES = os.environ.get(
    "INSP_FIXTURES", os.path.join(os.path.dirname(__file__), "..", "fixtures"))
TINY = os.path.join(FIXTURES, "tiny")
IMAGES = os.path.join(TINY, "images")
SOURCE_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OPENAPI = os.path.join(SOURCE_ROOT, "api", "openapi.yaml")

ERROR_CODES = {
    "bad_request", "bad_json", "bad_image", "invalid", "unauthorized", "forbidden", "not_found",
    "method_not_allowed", "conflict", "too_large", "unsupported_media_type", "busy", "not_ready",
    "internal",
}


def daemon_bin():
    return os.environ.get("INSPECTD_BIN") or os.path.join(SOURCE_ROOT, "build", "src", "daemon",
                                                          "inspectd")


def inspect_bin():
    return os.environ.get("INSPECT_BIN") or os.path.join(SOURCE_ROOT, "build", "src", "tools",
                                                         "inspect")


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def fixture_image(name):
    return read_file(os.path.join(IMAGES, name))


def content_type_of(name):
    return "image/png" if name.endswith(".png") else "image/jpeg"


# ---------------------------------------------------------------------------------------------
# Route registry: every request the suite sends, as (METHOD, route template). Requests that
# are meant to miss the router (unknown route, wrong method) are kept apart.

MEASUREMENTS = []  # lines printed at the end of the session (timings, memory)
ROUTES = []        # (method, template, status)
ROUTE_MISSES = []  # (method, raw path, status)


def measured(line):
    """Print a measurement now (-s) and again in the session summary."""
    print(line)
    MEASUREMENTS.append(line)


def route_template(path):
    """/v1/products/<anything>[/tail] -> /v1/products/{id}[/tail]; query dropped."""
    path = path.split("?", 1)[0]
    parts = path.split("/")
    if len(parts) >= 4 and parts[1] == "v1" and parts[2] == "products" and parts[3] != "":
        parts[3] = "{id}"
    return "/".join(parts)


def record(method, path, status, route_miss=False):
    if route_miss:
        ROUTE_MISSES.append((method.upper(), path, status))
    else:
        ROUTES.append((method.upper(), route_template(path), status))


# ---------------------------------------------------------------------------------------------
# HTTP clients


class Client:
    """requests.Session bound to one daemon, with an optional API key; records routes."""

    def __init__(self, base, key=None, verify=None, timeout=60):
        self.base = base
        self.key = key
        self.verify = verify
        self.timeout = timeout
        self.session = requests.Session()

    def request(self, method, path, route_miss=False, key="default", headers=None, **kw):
        h = dict(headers or {})
        k = self.key if key == "default" else key
        if k is not None and "Authorization" not in h:
            h["Authorization"] = "Bearer " + k
        kw.setdefault("timeout", self.timeout)
        if self.verify is not None:
            kw.setdefault("verify", self.verify)
        r = self.session.request(method, self.base + path, headers=h, **kw)
        record(method, path, r.status_code, route_miss)
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def close(self):
        self.session.close()


class RawResponse:
    def __init__(self, status, headers, body):
        self.status_code = status
        self.headers = headers
        self.content = body
        self.text = body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


def raw_request(port, method, path, headers=None, body=b"", chunks=None, timeout=30,
                route_miss=False, host="127.0.0.1"):
    """HTTP/1.1 over a plain socket: the path is sent byte for byte (no dot-segment removal,
    no re-quoting), and the body is sent piece by piece while watching for an early answer
    (a server may refuse an oversized body before reading it). `chunks`: an iterable of
    bytes sent with chunked transfer encoding instead of `body`."""
    h = {"Host": "%s:%d" % (host, port), "Connection": "close"}
    h.update(headers or {})
    if chunks is None:
        h["Content-Length"] = str(len(body))
    else:
        h["Transfer-Encoding"] = "chunked"
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(head.encode("latin-1"))

        def pieces():
            if chunks is None:
                for i in range(0, len(body), 65536):
                    yield body[i:i + 65536]
            else:
                for c in chunks:
                    if c:
                        yield b"%x\r\n" % len(c) + c + b"\r\n"
                yield b"0\r\n\r\n"

        for piece in pieces():
            readable, _, _ = select.select([s], [], [], 0)
            if readable:
                break  # the server answered early
            try:
                s.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
            resp = _parse_response(data)
            if resp is not None:
                break
    finally:
        s.close()
    resp = _parse_response(data, final=True)
    if resp is None:
        raise ConnectionError("no HTTP response to %s %s (got %r)" % (method, path, data[:200]))
    record(method, path, resp.status_code, route_miss)
    return resp


def _parse_response(data, final=False):
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        return None
    headers = requests.structures.CaseInsensitiveDict()
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip()] = v.strip()
    body = data[end + 4:]
    if "Content-Length" in headers:
        n = int(headers["Content-Length"])
        if len(body) < n:
            return None
        body = body[:n]
    elif headers.get("Transfer-Encoding", "").lower() == "chunked":
        out, pos = b"", 0
        while True:
            e = body.find(b"\r\n", pos)
            if e < 0:
                return None
            n = int(body[pos:e].split(b";")[0], 16)
            if n == 0:
                break
            if len(body) < e + 2 + n + 2:
                return None
            out += body[e + 2:e + 2 + n]
            pos = e + 2 + n + 2
        body = out
    elif not final:
        return None
    return RawResponse(int(m.group(1)), headers, body)


# ---------------------------------------------------------------------------------------------
# Assertions shared by the tests


def assert_error(resp, status, codes):
    """The response is `status` with a JSON body {"error": {"code", "message"}}, code in codes."""
    if isinstance(codes, str):
        codes = (codes,)
    assert resp.status_code == status, "expected %d %s, got %d: %s" % (
        status, "/".join(codes), resp.status_code, resp.text[:300])
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), "error Content-Type %r" % ctype
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    err = body["error"]
    assert isinstance(err.get("code"), str) and err["code"] in ERROR_CODES, body
    assert isinstance(err.get("message"), str) and err["message"].strip(), body
    assert err["code"] in codes, "expected code %s, got %r (%s)" % (
        "/".join(codes), err["code"], err["message"])
    return err


# ---------------------------------------------------------------------------------------------
# Daemon process


class Daemon:
    """One inspectd process on a free loopback port; restartable on the same state dir."""

    def __init__(self, workdir, args, state_dir, env=None, key=None, tls_ca=None, name="d"):
        self.workdir = workdir
        self.args = list(args)
        self.state_dir = state_dir
        self.env = env
        self.key = key
        self.tls_ca = tls_ca
        self.name = name
        self.proc = None
        self.port = None
        self.runs = 0
        self.log_path = None
        self.exit_codes = []

    @property
    def scheme(self):
        return "https" if self.tls_ca else "http"

    @property
    def base(self):
        host = "localhost" if self.tls_ca else "127.0.0.1"
        return "%s://%s:%d" % (self.scheme, host, self.port)

    def client(self, key="default"):
        return Client(self.base, key=self.key if key == "default" else key, verify=self.tls_ca)

    def start(self, ready_timeout=30):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        for attempt in range(3):
            self.port = free_port()
            self.runs += 1
            self.log_path = os.path.join(self.workdir, "%s-run%d.log" % (self.name, self.runs))
            cmd = [daemon_bin(), "--listen", "127.0.0.1:%d" % self.port, "--state-dir",
                   self.state_dir, "--model", "default=" + TINY] + self.args
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=log, env=self.env, cwd=self.workdir)
            self.http = self.client()
            try:
                self._wait_ready(ready_timeout)
                return self
            except AssertionError:
                # The free port was taken by someone else in between: try another one.
                if attempt == 2 or self.proc is None or "in use" not in self.log_tail():
                    raise

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("inspectd exited with %d before it was ready:\n%s" % (
                    self.proc.returncode, self.log_tail()))
            try:
                r = self.http.get("/readyz", timeout=2)
                if r.status_code == 200:
                    return
                last = "%d %s" % (r.status_code, r.text[:200])
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill()
        raise AssertionError("inspectd not ready after %ds (last: %s):\n%s" % (
            timeout, last, self.log_tail()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=20):
        """SIGTERM, wait; returns the exit status (None if it had to be killed)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.exit_codes.append(None)
                self.http.close()
                return None
        self.exit_codes.append(self.proc.returncode)
        self.http.close()
        return self.proc.returncode

    def stop_ok(self, timeout=20):
        rc = self.stop(timeout)
        assert rc == 0, "inspectd did not exit 0 on SIGTERM within %ds (got %r):\n%s" % (
            timeout, rc, self.log_tail())

    def kill(self):
        """SIGKILL (the crash tests); not a failure."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, ready_timeout=30):
        self.stop_ok()
        return self.start(ready_timeout)

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return "(no log)"

    def log_lines(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()

    # Shortcuts through the default client.
    def get(self, path, **kw):
        return self.http.get(path, **kw)

    def put(self, path, **kw):
        return self.http.put(path, **kw)

    def post(self, path, **kw):
        return self.http.post(path, **kw)

    def delete(self, path, **kw):
        return self.http.delete(path, **kw)

    def assert_serving(self):
        assert self.running(), "inspectd died:\n" + self.log_tail()
        r = self.get("/healthz", timeout=10)
        assert r.status_code == 200, "healthz %d after the bad request" % r.status_code

    # Product helpers.
    def create_product(self, pid, obj="bottle", **fields):
        body = {"object": obj}
        body.update(fields)
        r = self.put("/v1/products/" + pid, json=body)
        assert r.status_code in (200, 201), "PUT %s: %d %s" % (pid, r.status_code, r.text[:300])
        return r.json()

    def add_reference(self, pid, name):
        r = self.post("/v1/products/%s/references" % pid, data=fixture_image(name),
                      headers={"Content-Type": content_type_of(name)})
        assert r.status_code == 200, "reference %s: %d %s" % (name, r.status_code, r.text[:300])
        return r.json()

    def add_references_multipart(self, pid, names):
        files = [("image%d" % i, (n, fixture_image(n), content_type_of(n)))
                 for i, n in enumerate(names)]
        return self.post("/v1/products/%s/references" % pid, files=files)

    def inspect(self, pid, data, ctype="image/png", query="", **kw):
        return self.post("/v1/products/%s/inspect%s" % (pid, query), data=data,
                         headers={"Content-Type": ctype}, **kw)

    def inspect_ok(self, pid, name, query=""):
        r = self.inspect(pid, fixture_image(name), content_type_of(name), query)
        assert r.status_code == 200, "inspect %s: %d %s" % (name, r.status_code, r.text[:300])
        return r.json()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# PNG: writer and a strict reader (CRCs, filters 0-4, no interlace), enough for the maps.

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xffffffff)


def png_encode(pixels, level=6):
    """pixels: uint8 or uint16 array [h, w] (gray) or [h, w, 3] (RGB)."""
    a = np.asarray(pixels)
    h, w = a.shape[:2]
    ctype = 0 if a.ndim == 2 else 2
    depth = 16 if a.dtype == np.uint16 else 8
    raw = a.astype(">u2" if depth == 16 else np.uint8).reshape(h, -1).view(np.uint8)
    rows = np.hstack([np.zeros((h, 1), np.uint8), raw.reshape(h, -1)])
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    return (PNG_SIG + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + png_chunk(b"IEND", b""))


def png_header(width, height, depth=8, ctype=2):
    """Signature and a valid IHDR claiming width x height, then a tiny IDAT and IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0)
    return (PNG_SIG + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def png_patch_size(png, width, height):
    """A real PNG whose IHDR now claims width x height (CRC recomputed)."""
    assert png[:8] == PNG_SIG and png[12:16] == b"IHDR"
    ihdr = struct.pack(">II", width, height) + png[24:29]
    return png[:8] + png_chunk(b"IHDR", ihdr) + png[33:]


class Png:
    def __init__(self, width, height, bit_depth, color_type, pixels):
        self.width, self.height = width, height
        self.bit_depth, self.color_type = bit_depth, color_type
        self.pixels = pixels  # uint8/uint16 [h, w] or [h, w, c]


def png_decode(data):
    assert data[:8] == PNG_SIG, "not a PNG signature"
    pos, ihdr, idat = 8, None, b""
    seen_end = False
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert crc == zlib.crc32(kind + body) & 0xffffffff, "bad CRC in %r" % kind
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            seen_end = True
            break
        pos += 12 + n
    assert ihdr and seen_end, "PNG without IHDR or IEND"
    w, h, depth, ctype, _, _, interlace = ihdr
    assert interlace == 0, "interlaced PNG"
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    assert depth in (8, 16), "bit depth %d" % depth
    bpp = channels * depth // 8
    stride = w * bpp
    raw = zlib.decompress(idat)
    assert len(raw) == h * (stride + 1), "IDAT size %d for %dx%d" % (len(raw), w, h)
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        else:
            assert f == 0, "bad filter type %d" % f
        out[y * stride:(y + 1) * stride] = line
        prev = line
    px = np.frombuffer(bytes(out), dtype=">u2" if depth == 16 else np.uint8)
    px = px.astype(np.uint16 if depth == 16 else np.uint8)
    px = px.reshape((h, w) if channels == 1 else (h, w, channels))
    return Png(w, h, depth, ctype, px)


def png_size(data):
    return struct.unpack(">II", data[16:24])


def noise_png(width, height, seed, level=1):
    rng = np.random.default_rng(seed)
    return png_encode(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), level)


def pattern_png(width, height, level=6):
    """A large image that compresses to little (blocks: 6000x6000 is ~1 MB, so uploads are
    quick) but takes real time to decode and resize."""
    y = np.arange(height, dtype=np.uint32)[:, None]
    x = np.arange(width, dtype=np.uint32)[None, :]
    r = ((x // 37 * 29 + y // 41 * 13) & 255).astype(np.uint8)
    g = ((x // 53 * 7 + y // 29 * 31) & 255).astype(np.uint8)
    b = np.broadcast_to((((x // 50 + y // 50) & 1) * 200).astype(np.uint8), r.shape)
    return png_encode(np.stack([r, g, b], axis=2), level)


# ---------------------------------------------------------------------------------------------
# JPEG header


def jpeg_size(data):
    pos = 2
    while pos < len(data):
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        n = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", data[pos + 5:pos + 9])
            return w, h
        pos += 2 + n
    raise AssertionError("no SOF marker")


def jpeg_patch_size(data, width, height):
    """A real JPEG whose SOF now claims width x height."""
    pos = 2
    while pos < len(data):
        marker = data[pos + 1]
        n = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            return data[:pos + 5] + struct.pack(">HH", height, width) + data[pos + 9:]
        pos += 2 + n
    raise AssertionError("no SOF marker")


# ---------------------------------------------------------------------------------------------
# safetensors (golden fixtures)


def read_safetensors(path):
    raw = read_file(path)
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    dtypes = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dtype = np.dtype(dtypes[info["dtype"]]).newbyteorder("<")
        arr = np.frombuffer(raw[base + a:base + b], dtype=dtype)
        out[name] = arr.reshape(info["shape"])
    return out


def decode_map(inspection):
    """The inspection's map, decoded and checked against its own width/height/bit_depth."""
    m = inspection["map"]
    assert m["format"] == "png", m["format"]
    png = png_decode(base64.b64decode(m["data"], validate=True))
    assert (png.width, png.height) == (m["width"], m["height"]), (png.width, png.height, m)
    assert png.bit_depth == m["bit_depth"], (png.bit_depth, m["bit_depth"])
    assert png.color_type == 0, "map PNG color type %d, expected gray" % png.color_type
    return png


def asan_options(extra):
    """The inherited ASAN_OPTIONS with `extra` appended (for a daemon run under ASan)."""
    base = os.environ.get("ASAN_OPTIONS", "")
    return base + (":" if base else "") + extra


def png_with_comment(png, text):
    """The same image with a tEXt chunk after IHDR: other bytes (and SHA-256), same pixels."""
    assert png[:8] == PNG_SIG and png[12:16] == b"IHDR"
    return png[:33] + png_chunk(b"tEXt", b"Comment\0" + text.encode()) + png[33:]
