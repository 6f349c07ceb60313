#!/usr/bin/python3
# Prints the README's Performance tables (Markdown) from the JSON files bench/run wrote.
#   bench/table.py DIR
import glob
import json
import os
import sys

PYTORCH_S = 6.25  # anomalib's WinCLIP, PyTorch on CPU, 240x240, this class of 2-core machine


def load(d, name):
    with open(os.path.join(d, name)) as f:
        return json.load(f)


def cpu_name(d):
    with open(os.path.join(d, "lscpu.txt")) as f:
        for line in f:
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    return "?"


def main():
    d = sys.argv[1]
    st, tx, dm = load(d, "stages.json"), load(d, "text.json"), load(d, "daemon.json")
    s = st["settings"]
    print("Machine: %s, %d CPUs; %s; %d threads, fp32, %d runs after %d warm-up.\n" % (
        cpu_name(d), s["cpus_online"], s["blas_config"].split(" NO_")[0], s["threads"],
        s["runs"], s["warmup"]))
    print("| stage (ViT-B-16-plus-240) | zero-shot ms, median (p90) | 4-shot ms | GFLOP | GFLOP/s |")
    print("|---|---|---|---|---|")
    z, f = st["zero_shot"], st["few_shot"]
    for name in ("decode", "preprocess", "image", "windows", "score", "map", "total"):
        a, b = z[name], f[name]
        gf = "%.1f" % a["gflop"] if "gflop" in a else ""
        rate = "%.0f" % a["gflops"] if "gflops" in a else ""
        print("| %s | %.1f (%.1f) | %.1f | %s | %s |" % (
            name, a["median_ms"], a["p90_ms"], b["median_ms"], gf, rate))
    sg = st["sgemm"]
    best = max(sg["pool_split"]["gflops"], sg["blas_threads"]["gflops"])
    e = st["efficiency"]
    print("\n| figure | value |")
    print("|---|---|")
    print("| sgemm on the model's own GEMM shapes, same run | %.0f GFLOP/s |" % best)
    print("| efficiency zero-shot (end-to-end GFLOP/s / sgemm GFLOP/s) | %.2f |" % e["zero_shot"])
    print("| efficiency 4-shot | %.2f |" % e["few_shot"])
    print("| 4-shot over zero-shot time | %+.1f%% |" % (100 * st["few_shot_added"]))
    if "minor_page_faults_median" in z:
        print("| minor page faults per inspection after the warm-up (median) | %d |" %
              z["minor_page_faults_median"])
    t = tx["text"]
    print("| 231 prompts: as run / padded to 77 tokens | %.0f ms / %.0f ms = %.2f |" % (
        t["as_run"]["median_ms"], t["padded_77"]["median_ms"], t["ratio"]))
    print("| peak RSS, bench (model + one worker) | %.0f MiB |" % st["memory"]["peak_rss_mib"])
    print("| peak RSS, daemon (model, one worker, 2 products, 4 references) | %.0f MiB |" %
          dm["peak_rss_mib"])
    print("| vs PyTorch (anomalib WinCLIP, %.2f s) | %.2f s, %.1fx |" % (
        PYTORCH_S, z["total"]["median_ms"] / 1e3, PYTORCH_S * 1e3 / z["total"]["median_ms"]))

    print("\n| workers x threads | latency median (p90), all busy | images/s |")
    print("|---|---|---|")
    for path in sorted(glob.glob(os.path.join(d, "workers-*.json"))):
        w = load(d, os.path.basename(path))["throughput"]
        b = w["all_busy"]
        print("| %d x %d | %.0f ms (%.0f) | %.3f |" % (
            w["workers"], w["threads"], b["latency_median_ms"], b["latency_p90_ms"],
            b["images_per_s"]))

    print("\n| daemon (HTTP, 1 worker) | ms |")
    print("|---|---|")
    print("| start (model load) | %.0f |" % dm["start_ms"])
    print("| create a product (231 prompts encoded) | %.0f |" % dm["create_product_ms"])
    print("| create a second one, same object (prompts from the text cache) | %.0f |" %
          dm["create_second_product_ms"])
    print("| add a reference (median) | %.0f |" % sorted(dm["reference_ms"])[len(dm["reference_ms"]) // 2])
    print("| inspect zero-shot, HTTP round trip (median) | %.0f |" % dm["zero_shot_inspect"]["http_median_ms"])
    print("| inspect 4-shot, HTTP round trip (median) | %.0f |" % dm["few_shot_inspect"]["http_median_ms"])
    print("| restart with both products (all from the caches) | %.0f |" % dm["restart_ms"])


if __name__ == "__main__":
    main()
