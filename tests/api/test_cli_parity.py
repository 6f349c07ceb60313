# The daemon and the inspect CLI run the same pipeline: over HTTP and on the command line the
# fixture images must get the same scores (1e-6) and the same 16-bit maps (±1 level), and
# both must match the golden PyTorch values of tests/fixtures/tiny (1e-3).
import json
import os
import subprocess

import numpy as np
import pytest

import helpers
from helpers import decode_map, png_decode

MANIFEST = json.loads(helpers.read_file(os.path.join(helpers.TINY, "manifest.json")))
IMAGES = MANIFEST["images"]
REFERENCES = MANIFEST["references"]


def run_cli(ext, refs, map_dir):
    cmd = [helpers.inspect_bin(), "--model", helpers.TINY, "--object", "bottle",
           "--map-dir", map_dir, "--map-size", "model"]
    for r in refs:
        cmd += ["--ref", os.path.join(helpers.IMAGES, r + ext)]
    cmd += [os.path.join(helpers.IMAGES, i + ext) for i in IMAGES]
    p = subprocess.run(cmd, capture_output=True, timeout=600,
                       env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert p.returncode == 0, "inspect CLI failed (%d): %s" % (p.returncode,
                                                              p.stderr.decode()[-2000:])
    out = {}
    for line in p.stdout.decode().splitlines():
        j = json.loads(line)
        name = os.path.splitext(os.path.basename(j["image"]))[0]
        out[name] = (j["score"], png_decode(helpers.read_file(j["map"])))
    assert sorted(out) == sorted(IMAGES)
    return out


@pytest.mark.parametrize("shots", [0, 4], ids=["zero_shot", "few_shot_k4"])
@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_http_matches_cli_and_golden(daemon, tmp_path, shots, ext):
    d = daemon()
    d.create_product("bottle")
    refs = REFERENCES[:shots]
    for r in refs:
        d.add_reference("bottle", r + ext)
    cli = run_cli(ext, refs, str(tmp_path / "maps"))
    golden = helpers.read_safetensors(os.path.join(helpers.TINY, "expected.safetensors"))

    worst_score = worst_level = worst_golden_score = worst_golden_map = 0.0
    for name in IMAGES:
        j = d.inspect_ok("bottle", name + ext, "?map_size=model")
        assert j["mode"] == ("few-shot" if shots else "zero-shot")
        http_map = decode_map(j)
        assert (http_map.width, http_map.height, http_map.bit_depth) == (96, 96, 16)
        cli_score, cli_map = cli[name]
        assert cli_map.bit_depth == 16 and cli_map.pixels.shape == (96, 96)
        worst_score = max(worst_score, abs(j["score"] - cli_score))
        worst_level = max(worst_level, int(np.abs(http_map.pixels.astype(np.int64) -
                                                  cli_map.pixels.astype(np.int64)).max()))
        if ext == ".png":  # the golden values were computed from the PNGs
            prefix = "few_shot.k%d.bottle" % shots if shots else "zero_shot.bottle"
            g_score = float(golden[prefix + ".image_score." + name][0])
            g_map = golden[prefix + ".map." + name].astype(np.float64)
            worst_golden_score = max(worst_golden_score, abs(j["score"] - g_score))
            worst_golden_map = max(worst_golden_map, float(
                np.abs(http_map.pixels / 65535.0 - g_map).max()))
    helpers.measured("shots=%d %s: |http-cli| score %.2e, map %d levels; "
                     "|http-golden| score %.2e, map %.2e" % (
                         shots, ext, worst_score, worst_level, worst_golden_score,
                         worst_golden_map))
    assert worst_score <= 1e-6, "HTTP vs CLI score differs by %g" % worst_score
    assert worst_level <= 1, "HTTP vs CLI map differs by %d levels" % worst_level
    assert worst_golden_score <= 1e-3, "score vs golden: %g" % worst_golden_score
    assert worst_golden_map <= 1e-3, "map vs golden: %g" % worst_golden_map
