# inspect-eval end to end: the synthetic dataset (inspect-synth) in each layout, the tiny
# fixture model, and every output file's structure; the maps and scores checked against the
# inspect CLI, the image metrics against scikit-learn on the written scores.
import csv
import json
import math
import os
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from conftest import png_header, run

KEYS = ["image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_aupro", "pixel_f1max"]
CATS = ["metal_plate", "wood_board"]
SYNTH = ["--categories", "2", "--size", "112", "--train", "3", "--test-good", "4",
         "--test-bad", "2"]  # 10 test images per category: 4 good, 2 per defect


@pytest.fixture(scope="module")
def mvtec(synth_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("mvtec")
    run([synth_bin, "--out", str(root)] + SYNTH)
    return root


@pytest.fixture(scope="module")
def zero_shot(eval_bin, tiny_model, mvtec, tmp_path_factory):
    out = tmp_path_factory.mktemp("zero")
    p = run([eval_bin, "--model", tiny_model, "--dataset", "mvtec", "--root", str(mvtec),
             "--out", str(out), "--save-maps", "--threads", "1"])
    return out, p


@pytest.fixture(scope="module")
def few_shot(eval_bin, tiny_model, mvtec, tmp_path_factory):
    out = tmp_path_factory.mktemp("few")
    run([eval_bin, "--model", tiny_model, "--dataset", "mvtec", "--root", str(mvtec), "--out",
         str(out), "--shots", "2", "--seeds", "2", "--save-maps", "--quiet", "--threads", "1",
         "--category", "wood_board", "--object", "wood_board=plank of oak"])
    return out


def read_scores(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "label", "score"]
    return [(r[0], int(r[1]), float(r[2])) for r in rows[1:]]


def check_metrics_json(path, cats, pixels=True, seeds=1):
    with open(path) as f:
        m = json.load(f)
    assert list(m) == cats + ["mean"]
    for name, o in m.items():
        expected = set(KEYS) | ({"std", "per_seed"} if seeds > 1 else set())
        assert set(o) == expected, name
        for k in KEYS:
            if k.startswith("pixel") and not pixels:
                assert o[k] is None
            else:
                assert isinstance(o[k], float) and 0.0 <= o[k] <= 1.0, (name, k, o[k])
        if seeds > 1:
            assert len(o["per_seed"]) == seeds
            for k in KEYS:
                vals = [s[k] for s in o["per_seed"]]
                assert math.isclose(o[k], sum(vals) / seeds, abs_tol=1e-12)
                assert math.isclose(o["std"][k], float(np.std(vals)), abs_tol=1e-12)
    for k in KEYS:  # the mean row averages the categories
        if m["mean"][k] is not None:
            assert math.isclose(m["mean"][k], sum(m[c][k] for c in cats) / len(cats),
                                abs_tol=1e-12)
    return m


def test_outputs_exist(zero_shot):
    out, p = zero_shot
    for name in ("metrics.json", "metrics.md", "scores.csv", "run.json", "report.html"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert "WinCLIP zero-shot on mvtec" in p.stdout
    assert "images" in p.stderr and "img/s" in p.stderr and "ETA" in p.stderr  # progress


def test_metrics_json(zero_shot):
    check_metrics_json(zero_shot[0] / "metrics.json", CATS)


def test_metrics_md(zero_shot):
    lines = (zero_shot[0] / "metrics.md").read_text().splitlines()
    table = [l for l in lines if l.startswith("|")]
    assert table[0] == ("| category | image AUROC | image AP | image F1-max | pixel AUROC | "
                        "pixel AUPRO | pixel F1-max |")
    assert re.fullmatch(r"\|---\|(---:\|){6}", table[1])
    m = json.loads((zero_shot[0] / "metrics.json").read_text())
    assert [r.split("|")[1].strip() for r in table[2:]] == CATS + ["**mean**"]
    for row, cat in zip(table[2:], CATS + ["mean"]):
        cells = [c.strip().strip("*") for c in row.split("|")[2:-1]]
        assert len(cells) == 6
        for c, k in zip(cells, KEYS):
            assert abs(float(c) - 100 * m[cat][k]) <= 0.05 + 1e-9  # percent, one decimal


def test_scores_csv_and_sklearn(zero_shot, mvtec):
    rows = read_scores(zero_shot[0] / "scores.csv")
    assert len(rows) == 2 * 10
    m = json.loads((zero_shot[0] / "metrics.json").read_text())
    for cat in CATS:
        mine = [r for r in rows if r[0].startswith(cat + "/test/")]
        assert len(mine) == 10
        for path, label, score in mine:
            assert (mvtec / path).is_file()
            assert label == (0 if path.split("/")[2] == "good" else 1)
            assert 0.0 <= score <= 1.0
        y = [r[1] for r in mine]
        s = np.array([r[2] for r in mine], dtype=np.float32).astype(np.float64)
        assert abs(m[cat]["image_auroc"] - roc_auc_score(y, s)) <= 1e-9
        assert abs(m[cat]["image_ap"] - average_precision_score(y, s)) <= 1e-9


def test_maps_are_16_bit_at_image_size(zero_shot, mvtec):
    out = zero_shot[0]
    for path, _, _ in read_scores(out / "scores.csv"):
        cat, _, defect, name = path.split("/")
        map_path = out / "maps" / cat / defect / (os.path.splitext(name)[0] + ".png")
        assert map_path.is_file(), map_path
        w, h, depth, color = png_header(map_path)
        iw, ih, _, _ = png_header(mvtec / path)
        assert (w, h, depth, color) == (iw, ih, 16, 0)


class Report(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.sections, self.images, self.polylines, self.table_rows = [], [], [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag == "polyline":
            self.polylines.append(a.get("points", ""))
        if tag == "tr":
            self.table_rows += 1


def test_report_html(zero_shot):
    text = (zero_shot[0] / "report.html").read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "http://" not in text and "https://" not in text and "<script" not in text
    r = Report()
    r.feed(text)
    assert r.sections == ["cat-0", "cat-1"]
    assert r.table_rows == 1 + len(CATS) + 1
    assert r.tags.count("svg") == 4 * len(CATS)  # image ROC, PR, pixel ROC, PRO per category
    for pts in r.polylines:
        xy = [tuple(map(float, p.split(","))) for p in pts.split()]
        assert len(xy) >= 2 and all(0 <= x <= 260 and 0 <= y <= 270 for x, y in xy)
    # 4 normals and 4 anomalies per category, each an inline JPEG.
    assert len(r.images) == 2 * 4 * len(CATS)
    import base64
    for src in r.images:
        assert src.startswith("data:image/jpeg;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:3] == b"\xff\xd8\xff"
    assert "Highest-scoring normal images" in text and "Lowest-scoring anomalous images" in text


def test_run_json(zero_shot, tiny_model):
    r = json.loads((zero_shot[0] / "run.json").read_text())
    assert r["model"]["image_size"] == 96 and len(r["model"]["sha256"]) == 64
    assert r["settings"]["shots"] == 0 and r["settings"]["pixel_size"] == 96
    assert r["categories"]["metal_plate"]["object"] == "metal plate"
    assert r["categories"]["wood_board"]["n_test"] == 10
    assert r["categories"]["wood_board"]["n_anomalous"] == 6
    assert r["timing"]["images"] == 20 and r["timing"]["images_per_second"] > 0


def test_few_shot_seeds(few_shot, mvtec):
    m = check_metrics_json(few_shot / "metrics.json", ["wood_board"], seeds=2)
    r = json.loads((few_shot / "run.json").read_text())
    cat = r["categories"]["wood_board"]
    assert cat["object"] == "plank of oak"
    assert len(cat["shots"]) == 2 and all(len(s) == 2 for s in cat["shots"])
    for draw in cat["shots"]:
        assert len(set(draw)) == 2
        for p in draw:
            assert p.startswith("wood_board/train/good/") and (mvtec / p).is_file()
    s0 = read_scores(few_shot / "scores.csv")
    s1 = read_scores(few_shot / "scores-seed1.csv")
    assert [r[:2] for r in s0] == [r[:2] for r in s1] and len(s0) == 10
    for seed, rows in enumerate((s0, s1)):
        y = [r[1] for r in rows]
        s = np.array([r[2] for r in rows], dtype=np.float32).astype(np.float64)
        assert abs(m["wood_board"]["per_seed"][seed]["image_auroc"] - roc_auc_score(y, s)) <= 1e-9


def test_maps_and_scores_equal_the_inspect_cli(few_shot, mvtec, inspect_bin, tiny_model,
                                               tmp_path):
    # inspect-eval scores each image's features against every seed's memory itself; what it
    # writes for the first seed must be exactly what `inspect` gives with those shots.
    r = json.loads((few_shot / "run.json").read_text())
    refs = r["categories"]["wood_board"]["shots"][0]
    rows = read_scores(few_shot / "scores.csv")
    args = [inspect_bin, "--model", tiny_model, "--object", "plank of oak", "--smooth", "4",
            "--map-dir", str(tmp_path), "--threads", "1"]
    for ref in refs:
        args += ["--ref", str(mvtec / ref)]
    # Same thread count on both sides: the GEMMs' summation order depends on it.
    for path, _, score in rows:
        o = json.loads(run(args + [str(mvtec / path)]).stdout)
        assert abs(o["score"] - score) <= 1e-6 * max(1.0, abs(score)), path
        cat, _, defect, name = path.split("/")
        stem = os.path.splitext(name)[0]
        mine = (few_shot / "maps" / cat / defect / (stem + ".png")).read_bytes()
        assert (tmp_path / (stem + ".png")).read_bytes() == mine, path


def test_visa_layout(eval_bin, synth_bin, tiny_model, tmp_path):
    root = tmp_path / "visa"
    run([synth_bin, "--out", str(root), "--layout", "visa"] + SYNTH)
    rows = list(csv.reader(open(root / "split_csv" / "1cls.csv")))
    assert rows[0] == ["object", "split", "label", "image", "mask"]
    out = tmp_path / "out"
    run([eval_bin, "--model", tiny_model, "--dataset", "visa", "--root", str(root), "--out",
         str(out), "--quiet", "--shots", "1"])
    check_metrics_json(out / "metrics.json", CATS)  # VisA masks hold 1, not 255
    scores = read_scores(out / "scores.csv")
    assert len(scores) == 20 and all(p.endswith(".JPG") for p, _, _ in scores)


def test_folder_layout(eval_bin, synth_bin, tiny_model, tmp_path):
    root = tmp_path / "plant"
    run([synth_bin, "--out", str(root), "--layout", "folder"] + SYNTH)
    out = tmp_path / "out"
    run([eval_bin, "--model", tiny_model, "--dataset", "folder", "--root", str(root), "--out",
         str(out), "--quiet", "--save-maps", "--pixel-size", "image"])
    check_metrics_json(out / "metrics.json", CATS)
    assert (out / "maps" / "wood_board" / "bad").is_dir()
    # One product at the root: good/ and bad/ without masks → image metrics only.
    single = root / "metal_plate"
    for f in (single / "masks").iterdir():
        f.unlink()
    (single / "masks").rmdir()
    out2 = tmp_path / "out2"
    run([eval_bin, "--model", tiny_model, "--dataset", "folder", "--root", str(single),
         "--out", str(out2), "--quiet"])
    check_metrics_json(out2 / "metrics.json", ["metal_plate"], pixels=False)
    assert "no masks" in (out2 / "metrics.md").read_text()


def test_errors_are_clear(eval_bin, synth_bin, tiny_model, mvtec, tmp_path):
    base = [eval_bin, "--model", tiny_model, "--out", str(tmp_path / "o"), "--quiet"]
    cases = [
        (base, 2, "--dataset, --root and --out are required"),
        (base + ["--dataset", "mvtec", "--root", str(tmp_path / "nope")], 1, "no such directory"),
        (base + ["--dataset", "mvtec", "--root", str(mvtec), "--category", "bottle"], 1,
         "category bottle"),
        (base + ["--dataset", "mvtec", "--root", str(mvtec), "--shots", "5"], 1,
         "only 3 normal training images"),
        (base + ["--dataset", "coco", "--root", str(mvtec)], 2, "mvtec, visa or folder"),
        (base + ["--dataset", "mvtec", "--root", str(mvtec), "--object", "cable=x"], 2,
         "no such category"),
        (base + ["--dataset", "visa", "--root", str(mvtec)], 1, "1cls.csv"),
        ([eval_bin, "--model", str(tmp_path), "--dataset", "mvtec", "--root", str(mvtec),
          "--out", str(tmp_path / "o")], 1, "model"),
    ]
    for args, code, text in cases:
        p = run(args, check=False)
        assert p.returncode == code and text in p.stderr, (args, p.returncode, p.stderr)
    # Only normal test images: no metric is defined, said before any inference.
    only_good = tmp_path / "good_only"
    (only_good / "good").mkdir(parents=True)
    img = next((mvtec / "metal_plate" / "test" / "good").iterdir())
    (only_good / "good" / "a.png").write_bytes(img.read_bytes())
    p = run([eval_bin, "--model", tiny_model, "--dataset", "folder", "--root", str(only_good),
             "--out", str(tmp_path / "o2")], check=False)
    assert p.returncode == 1 and "all 1 test images are normal" in p.stderr
    # An anomalous image without its mask.
    broken = tmp_path / "broken"
    run([synth_bin, "--out", str(broken)] + SYNTH[:2])
    next((broken / "metal_plate" / "ground_truth" / "spot").iterdir()).unlink()
    p = run(base + ["--dataset", "mvtec", "--root", str(broken)], check=False)
    assert p.returncode == 1 and "without a mask" in p.stderr
