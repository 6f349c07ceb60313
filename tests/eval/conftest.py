# Shared helpers for inspect-eval's Python tests, and the "N passed, N failed" line that
# tests/run adds up (pytest's own summary has another shape).
import os
import struct
import subprocess
import zlib

import pytest

_counts = {}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    stats = terminalreporter.stats
    _counts["passed"] = len(stats.get("passed", []))
    _counts["failed"] = len(stats.get("failed", [])) + len(stats.get("error", []))


def pytest_unconfigure(config):
    # After pytest's own summary, so that this is the last line of the output.
    if _counts:
        print(f"{_counts['passed']} passed, {_counts['failed']} failed", flush=True)


def _need(var):
    path = os.environ.get(var)
    if not path or not os.path.exists(path):
        pytest.fail(f"${var} must name the built program (meson test sets it)")
    return path


@pytest.fixture(scope="session")
def eval_bin():
    return _need("INSPECT_EVAL_BIN")


@pytest.fixture(scope="session")
def synth_bin():
    return _need("INSPECT_SYNTH_BIN")


@pytest.fixture(scope="session")
def inspect_bin():
    return _need("INSPECT_BIN")


@pytest.fixture(scope="session")
def tiny_model():
    fixtures = os.environ.get("INSP_FIXTURES")
    if not fixtures:
        pytest.fail("$INSP_FIXTURES must name tests/fixtures (meson test sets it)")
    return os.path.join(fixtures, "tiny")


def run(args, check=True, timeout=300):
    """Runs a program; returns the CompletedProcess (text mode)."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def write_gray_png(path, pixels, bit_depth):
    """A grayscale PNG from a 2-D array of ints (8- or 16-bit), filter 0 on every row."""
    h, w = len(pixels), len(pixels[0])
    fmt = ">%dH" % w if bit_depth == 16 else "%dB" % w
    raw = b"".join(b"\0" + struct.pack(fmt, *[int(v) for v in row]) for row in pixels)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, 0, 0, 0, 0)))
        f.write(png_chunk(b"IDAT", zlib.compress(raw)))
        f.write(png_chunk(b"IEND", b""))


def png_header(path):
    """(width, height, bit_depth, color_type) from a PNG's IHDR."""
    with open(path, "rb") as f:
        head = f.read(33)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    w, h, depth, color = struct.unpack(">IIBB", head[16:26])
    return w, h, depth, color
