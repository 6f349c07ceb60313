# inspect-eval's metric code (through --metrics-only) against scikit-learn's roc_auc_score,
# average_precision_score and precision_recall_curve (to 1e-9), and AUPRO against a numpy
# implementation written here from its definition (to 1e-6).
import json
import os

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from conftest import run, write_gray_png

TOL = 1e-9


def c_metrics(eval_bin, csv_path, check=True):
    p = run([eval_bin, "--metrics-only", str(csv_path)], check=check)
    return p if not check else json.loads(p.stdout)


def write_scores(path, scores, labels):
    with open(path, "w") as f:
        f.write("path,label,score\n")
        for i, (s, l) in enumerate(zip(scores, labels)):
            # %.9g round-trips a float32: the C side reads back exactly these values.
            f.write(f"img{i}.png,{int(l)},{float(s):.9g}\n")


def sk_f1max(labels, scores):
    p, r, _ = precision_recall_curve(labels, scores)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return float(np.max(f1))


def score_sets():
    """(name, scores as float32, labels): sizes, balances and ties of every kind."""
    rng = np.random.default_rng(20240601)
    sets = []
    for n in (2, 3, 5, 10, 57, 300, 4000):
        for levels in (None, 3, 50):
            for pos_rate in (0.1, 0.5, 0.9):
                labels = (rng.random(n) < pos_rate).astype(int)
                labels[0], labels[-1] = 0, 1  # both classes
                s = rng.normal(size=n) + labels * rng.uniform(0, 2)
                if levels:
                    s = np.round(s * levels / 4) / levels  # heavy ties
                sets.append((f"n{n}-lv{levels}-p{pos_rate}", s.astype(np.float32), labels))
    sets.append(("all-equal", np.full(9, 0.25, np.float32), np.array([0, 1] * 4 + [1])))
    sets.append(("perfect", np.arange(10, dtype=np.float32), np.array([0] * 6 + [1] * 4)))
    sets.append(("inverted", np.arange(10, dtype=np.float32), np.array([1] * 4 + [0] * 6)))
    sets.append(("one-positive", np.linspace(0, 1, 50, dtype=np.float32), np.eye(50, dtype=int)[17]))
    sets.append(("one-negative", np.linspace(0, 1, 50, dtype=np.float32), 1 - np.eye(50, dtype=int)[3]))
    sets.append(("tiny-gaps", (1 + np.arange(200) * 2**-23).astype(np.float32), np.arange(200) % 3 == 0))
    sets.append(("signed", np.array([-3e30, -1, -1e-30, 0, 1e-30, 1, 3e30, -0.0], np.float32),
                 np.array([0, 1, 0, 1, 0, 1, 1, 0])))
    return sets


SETS = score_sets()


@pytest.mark.parametrize("name,scores,labels", SETS, ids=[s[0] for s in SETS])
def test_image_metrics_equal_sklearn(eval_bin, tmp_path, name, scores, labels):
    csv = tmp_path / "scores.csv"
    write_scores(csv, scores, labels)
    got = c_metrics(eval_bin, csv)
    s64 = scores.astype(np.float64)
    labels = np.asarray(labels, dtype=int)
    assert got["n"] == len(labels) and got["n_anomalous"] == int(labels.sum())
    assert abs(got["auroc"] - roc_auc_score(labels, s64)) <= TOL
    assert abs(got["ap"] - average_precision_score(labels, s64)) <= TOL
    assert abs(got["f1max"] - sk_f1max(labels, s64)) <= TOL
    for k in ("auroc", "ap", "f1max"):
        assert 0.0 <= got[k] <= 1.0


@pytest.mark.parametrize("label", [0, 1])
def test_one_class_is_a_clear_error(eval_bin, tmp_path, label):
    csv = tmp_path / "scores.csv"
    write_scores(csv, np.linspace(0, 1, 12, dtype=np.float32), [label] * 12)
    p = c_metrics(eval_bin, csv, check=False)
    assert p.returncode == 1 and p.stdout == ""
    assert "only one class" in p.stderr and ("normal" if label == 0 else "anomalous") in p.stderr
    assert "nan" not in (p.stdout + p.stderr).lower()
    with pytest.raises(ValueError):  # scikit-learn refuses it too
        roc_auc_score([label] * 12, np.linspace(0, 1, 12))


def test_bad_input_files_are_refused(eval_bin, tmp_path):
    cases = {
        "header.csv": "a,b\n1,2\n",
        "label.csv": "path,label,score\nx,2,0.5\ny,0,0.1\n",
        "score.csv": "path,label,score\nx,1,abc\ny,0,0.1\n",
        "nan.csv": "path,label,score\nx,1,nan\ny,0,0.1\n",
        "empty.csv": "",
        "rows.csv": "path,label,score\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        p = c_metrics(eval_bin, tmp_path / name, check=False)
        assert p.returncode == 1 and p.stderr.startswith("inspect-eval: "), name
        assert p.stdout == "", name
    p = c_metrics(eval_bin, tmp_path / "missing.csv", check=False)
    assert p.returncode == 1 and "missing.csv" in p.stderr


# ---- pixels ---------------------------------------------------------------------------------

def aupro_reference(maps, masks, limit=0.3):
    """AUPRO from its definition: at every distinct score t, FPR = normal pixels ≥ t / normal
    pixels, PRO = mean over 8-connected ground-truth regions of (region pixels ≥ t) / |region|;
    area under PRO(FPR) from 0 to `limit` (trapezoids, the last one cut at the limit) / limit."""
    scores = np.concatenate([m.ravel() for m in maps])
    normal = np.concatenate([(mk == 0).ravel() for mk in masks])
    # Region masks over the concatenated pixel vector.
    offsets = np.cumsum([0] + [m.size for m in maps])
    region_vecs = []
    for m_index, m in enumerate(masks):
        lab, n = ndimage.label(m, structure=np.ones((3, 3), dtype=int))
        for r in range(1, n + 1):
            v = np.zeros(scores.size, bool)
            v[offsets[m_index]:offsets[m_index + 1]] = (lab == r).ravel()
            region_vecs.append(v)
    fprs, pros = [0.0], [0.0]
    for t in np.unique(scores)[::-1]:
        pred = scores >= t
        fprs.append(np.sum(pred & normal) / np.sum(normal))
        pros.append(np.mean([np.sum(pred & v) / np.sum(v) for v in region_vecs]))
    fprs, pros = np.array(fprs), np.array(pros)
    keep = fprs <= limit
    x, y = list(fprs[keep]), list(pros[keep])
    nxt = np.argmax(fprs > limit)  # the first point past the limit (FPR reaches 1 at the end)
    x0, y0, x1, y1 = fprs[nxt - 1], pros[nxt - 1], fprs[nxt], pros[nxt]
    x.append(limit)
    y.append(y0 + (y1 - y0) * (limit - x0) / (x1 - x0))
    x, y = np.array(x), np.array(y)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / limit), len(region_vecs)


def make_masks(rng, n_images, h, w):
    masks = []
    for i in range(n_images):
        m = np.zeros((h, w), np.uint8)
        if i % 3 != 0:  # every third image is normal
            for _ in range(rng.integers(1, 4)):
                y, x = rng.integers(0, h - 5), rng.integers(0, w - 5)
                m[y:y + rng.integers(1, 6), x:x + rng.integers(1, 6)] = 255
            # Two pixels touching only at a corner: one region with 8-connectivity.
            m[h - 3, w - 3] = m[h - 2, w - 2] = 255 if i % 2 else 0
        masks.append(m)
    return masks


@pytest.mark.parametrize("quantize", [0, 16, 400])
def test_pixel_metrics_equal_references(eval_bin, tmp_path, quantize):
    rng = np.random.default_rng(7 + quantize)
    h, w, n_images = 24, 32, 6
    masks = make_masks(rng, n_images, h, w)
    maps = []
    rows = ["map,mask"]
    for i, m in enumerate(masks):
        v = rng.random((h, w)) * 0.7 + (m > 0) * rng.random((h, w)) * 0.5
        v = np.clip(v, 0, 1)
        if quantize:
            v = np.round(v * quantize) / quantize
        u16 = np.round(v * 65535).astype(np.uint16)
        write_gray_png(tmp_path / f"map{i}.png", u16, 16)
        mask_name = ""
        if m.any() or i == 1:
            write_gray_png(tmp_path / f"mask{i}.png", m, 8)
            mask_name = f"mask{i}.png"
        rows.append(f"map{i}.png,{mask_name}")
        maps.append(u16.astype(np.float64))  # ranks are what matter; no rescaling needed
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    got = c_metrics(eval_bin, tmp_path / "pairs.csv")
    ref_aupro, n_regions = aupro_reference(maps, masks)
    labels = np.concatenate([(m > 0).ravel() for m in masks]).astype(int)
    scores = np.concatenate([m.ravel() for m in maps])
    assert got["n_images"] == n_images and got["n_pixels"] == labels.size
    assert got["n_regions"] == n_regions
    assert abs(got["aupro"] - ref_aupro) <= 1e-6
    assert abs(got["auroc"] - roc_auc_score(labels, scores)) <= TOL
    assert abs(got["f1max"] - sk_f1max(labels, scores)) <= TOL


def test_pixel_metrics_refuse_masks_without_defects(eval_bin, tmp_path):
    write_gray_png(tmp_path / "m.png", [[0, 100], [200, 65535]], 16)
    write_gray_png(tmp_path / "k.png", [[0, 0], [0, 0]], 8)
    (tmp_path / "pairs.csv").write_text("map,mask\nm.png,k.png\nm.png,\n")
    p = c_metrics(eval_bin, tmp_path / "pairs.csv", check=False)
    assert p.returncode == 1 and "no anomalous region" in p.stderr
    write_gray_png(tmp_path / "big.png", [[0, 0, 0]] * 2, 8)
    (tmp_path / "pairs.csv").write_text("map,mask\nm.png,big.png\n")
    p = c_metrics(eval_bin, tmp_path / "pairs.csv", check=False)
    assert p.returncode == 1 and "3×2" in p.stderr and "2×2" in p.stderr
