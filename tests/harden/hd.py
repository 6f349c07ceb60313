# Shared pieces of the hardening tests: a daemon process wrapper (real inspectd on a free
# loopback port), tmpfs mounts that are always unmounted, the store checker, distinct test
# images, raw sockets and /proc readings (RSS, open fds).
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import zlib

import numpy as np
import requests

FIXTURES = os.environ.get("INSP_FIXTURES", os.path.join(os.path.dirname(__file__), "..", "fixtures"))
TINY = os.path.join(FIXTURES, "tiny")
IMAGES = os.path.join(TINY, "images")
SOURCE_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

MEASUREMENTS = []  # printed in the session summary


def measured(line):
    print(line)
    MEASUREMENTS.append(line)


def daemon_bin():
    return os.environ.get("INSPECTD_BIN") or os.path.join(SOURCE_ROOT, "build", "src", "daemon", "inspectd")


def checker_bin():
    return os.environ.get("INSPECT_STORE_CHECK_BIN") or os.path.join(
        SOURCE_ROOT, "build", "src", "tools", "inspect-store-check")


def fixture(name):
    with open(os.path.join(IMAGES, name), "rb") as f:
        return f.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


def png_rgb(pixels):
    a = np.asarray(pixels, dtype=np.uint8)
    h, w = a.shape[:2]
    rows = np.hstack([np.zeros((h, 1), np.uint8), a.reshape(h, -1)])
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + png_chunk(b"IEND", b""))


def noise_png(seed, size=48):
    """A small distinct image per seed (distinct bytes: the store refuses duplicates)."""
    rng = np.random.default_rng(seed)
    return png_rgb(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def is_asan(pid):
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def n_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def n_threads(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def check_store(state_dir):
    """Runs inspect-store-check; returns (exit status, output)."""
    r = subprocess.run([checker_bin(), state_dir], capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def assert_store_clean(state_dir):
    rc, out = check_store(state_dir)
    assert rc == 0, "store check of %s: exit %d\n%s" % (state_dir, rc, out)


def assert_error(r, statuses, code=None, words=()):
    if isinstance(statuses, int):
        statuses = (statuses,)
    assert r.status_code in statuses, "expected %s, got %d: %s" % (statuses, r.status_code, r.text[:400])
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    err = r.json()["error"]
    assert isinstance(err["message"], str) and err["message"].strip()
    if code:
        assert err["code"] == code, err
    for w in words:
        assert w.lower() in err["message"].lower(), "%r not in %r" % (w, err["message"])
    return err


class Daemon:
    """One inspectd process; restartable on the same state directory."""

    def __init__(self, workdir, state_dir, args=(), env=None, name="inspectd"):
        self.workdir = str(workdir)
        self.state_dir = str(state_dir)
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.setdefault("OPENBLAS_NUM_THREADS", "1")
        self.env.update(env or {})
        self.name = name
        self.proc = None
        self.port = None
        self.runs = 0
        self.log_path = None
        self.session = None

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def command(self):
        args = self.args
        if "--auth" not in args and "--keys-file" not in args:
            args = ["--auth", "none"] + args
        if not any(a.startswith("--model") for a in args):
            args = ["--model", "default=" + TINY] + args
        return [daemon_bin(), "--listen", "127.0.0.1:%d" % self.port, "--state-dir",
                self.state_dir] + args

    def spawn(self):
        self.port = free_port()
        self.runs += 1
        self.log_path = os.path.join(self.workdir, "%s-run%d.log" % (self.name, self.runs))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=self.env, cwd=self.workdir)
        self.session = requests.Session()
        return self.proc

    def start(self, timeout=60):
        for attempt in range(3):
            self.spawn()
            try:
                self.wait_ready(timeout)
                return self
            except AssertionError:
                if attempt == 2 or "in use" not in self.log_tail():
                    raise

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("inspectd exited with %d before it was ready:\n%s" % (
                    self.proc.returncode, self.log_tail()))
            try:
                r = requests.get(self.base + "/readyz", timeout=5)
                if r.status_code == 200:
                    return
                last = "%d %s" % (r.status_code, r.text[:200])
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill()
        raise AssertionError("inspectd not ready after %ds (%s):\n%s" % (timeout, last, self.log_tail()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=60):
        """SIGTERM and wait: the exit status (None when it had to be killed)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def stop_ok(self, timeout=60):
        rc = self.stop(timeout)
        assert rc == 0, "inspectd exit %r on SIGTERM:\n%s" % (rc, self.log_tail())

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except (OSError, TypeError):
            return "(no log)"

    def request(self, method, path, timeout=120, **kw):
        return self.session.request(method, self.base + path, timeout=timeout, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def assert_serving(self):
        assert self.running(), "inspectd died:\n" + self.log_tail()
        r = requests.get(self.base + "/healthz", timeout=30)
        assert r.status_code == 200, "healthz %d" % r.status_code

    def create_product(self, pid, obj="bottle", **fields):
        body = {"object": obj}
        body.update(fields)
        r = self.put("/v1/products/" + pid, json=body)
        assert r.status_code in (200, 201), "PUT %s: %d %s" % (pid, r.status_code, r.text[:300])
        return r.json()

    def add_ref(self, pid, data, ctype="image/png"):
        return self.post("/v1/products/%s/references" % pid, data=data, headers={"Content-Type": ctype})

    def add_ref_ok(self, pid, data, ctype="image/png"):
        r = self.add_ref(pid, data, ctype)
        assert r.status_code == 200, "reference: %d %s" % (r.status_code, r.text[:300])
        return r.json()

    def n_refs(self, pid):
        r = self.get("/v1/products/" + pid)
        assert r.status_code == 200, "GET %s: %d %s" % (pid, r.status_code, r.text[:300])
        return r.json()["references"]

    def inspect(self, pid, data, ctype="image/png", query="?map=none", **kw):
        return self.post("/v1/products/%s/inspect%s" % (pid, query), data=data,
                         headers={"Content-Type": ctype}, **kw)

    @property
    def pid(self):
        return self.proc.pid


class Mounts:
    """tmpfs mounts made by a test, unmounted (lazily if busy) however the test ends."""

    def __init__(self, root):
        self.root = str(root)
        self.points = []

    def tmpfs(self, name, size="2m"):
        path = os.path.join(self.root, name)
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", path],
                       check=True, capture_output=True)
        self.points.append(path)
        return path

    def remount(self, path, mode):
        subprocess.run(["mount", "-o", "remount,%s" % mode, path], check=True, capture_output=True)

    def cleanup(self):
        for p in reversed(self.points):
            r = subprocess.run(["umount", p], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", p], capture_output=True)
        self.points = []


def fill_fs(path):
    """Fills the file system holding path to the last byte; returns the filler's path."""
    filler = os.path.join(path, "filler")
    block = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(block[:size])
            except OSError:
                pass
    return filler


def copy_model(dst):
    shutil.copytree(TINY, dst, ignore=shutil.ignore_patterns("images", "expected.safetensors"))
    return dst
