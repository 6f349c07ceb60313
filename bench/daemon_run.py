#!/usr/bin/python3
# The daemon end to end on a model of real size: start, product creation (prompt set encoded),
# references, inspections over HTTP, a restart (prompts and references from the store's
# caches), with peak RSS from /proc. Prints one JSON object. Used by bench/run.
#   bench/daemon_run.py --build build --model-dir DIR [--inspections 5] [--threads 2]
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(ROOT, "tests", "fixtures", "tiny", "images")
REFS = ["ref_00_normal.jpg", "ref_01_normal.jpg", "ref_05_normal.jpg", "ref_07_normal.jpg"]
PROBE = "02_scratch.jpg"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024.0  # MiB
    return out


class Daemon:
    def __init__(self, args, state, log):
        self.args, self.state, self.log = args, state, log
        self.proc = None

    def start(self):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        cmd = [os.path.join(self.args.build, "src", "daemon", "inspectd"), "--auth", "none",
               "--listen", "127.0.0.1:%d" % self.port, "--state-dir", self.state,
               "--model", "bench=" + self.args.model_dir, "--workers", str(self.args.workers),
               "--threads", str(self.args.threads)]
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=env)
        while True:
            if self.proc.poll() is not None:
                sys.exit("inspectd exited with %d; see %s" % (self.proc.returncode,
                                                                self.log.name))
            try:
                if requests.get(self.base + "/readyz", timeout=5).status_code == 200:
                    return time.monotonic() - t0
            except requests.RequestException:
                pass
            time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        if self.proc.wait(60) != 0:
            sys.exit("inspectd exit status %d" % self.proc.returncode)

    def timed(self, method, path, **kw):
        t0 = time.monotonic()
        r = requests.request(method, self.base + path, timeout=600, **kw)
        if r.status_code not in (200, 201):
            sys.exit("%s %s: %d %s" % (method, path, r.status_code, r.text[:300]))
        return r.json(), (time.monotonic() - t0) * 1e3


def image(name):
    with open(os.path.join(IMAGES, name), "rb") as f:
        return {"data": f.read(), "headers": {"Content-Type": "image/jpeg"}}


def main():
    ap = argparse.ArgumentParser(description="inspectd end to end on a model of real size")
    ap.add_argument("--build", default="build")
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--inspections", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="inspectd-bench-")
    state = os.path.join(work, "state")
    out = {"settings": {"model_dir": args.model_dir, "workers": args.workers,
                        "threads": args.threads or os.cpu_count(),
                        "inspections": args.inspections}}
    try:
        with open(os.path.join(work, "inspectd.log"), "w") as log:
            d = Daemon(args, state, log)
            out["start_ms"] = d.start() * 1e3
            out["rss_after_start_mib"] = proc_status(d.proc.pid)["VmRSS"]
            _, out["create_product_ms"] = d.timed("PUT", "/v1/products/zero",
                                                  json={"object": "bottle"})
            _, out["create_second_product_ms"] = d.timed("PUT", "/v1/products/few",
                                                         json={"object": "bottle"})
            out["reference_ms"] = [d.timed("POST", "/v1/products/few/references", **image(n))[1]
                                   for n in REFS]
            for pid in ("zero", "few"):
                lat, server = [], []
                for _ in range(args.inspections):
                    body, ms = d.timed("POST", "/v1/products/%s/inspect" % pid, **image(PROBE))
                    lat.append(ms)
                    server.append(body["timing_ms"]["total"])
                out[pid + "_shot_inspect"] = {
                    "mode": body["mode"], "http_median_ms": statistics.median(lat),
                    "engine_median_ms": statistics.median(server)}
            out["peak_rss_mib"] = proc_status(d.proc.pid)["VmHWM"]
            d.stop()
            out["restart_ms"] = d.start() * 1e3
            out["restart_peak_rss_mib"] = proc_status(d.proc.pid)["VmHWM"]
            d.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
