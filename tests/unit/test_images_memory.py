"""Cleaning a photo at the pixel limit fits the smallest pod that takes photos, as many at once as
lscloud.images decodes at once.

A 129 KB PNG of one colour just under the old limit (40 MP) peaked at 538 MB while it was cleaned,
two at once in a pod limited to 384Mi: the replica was OOM-killed by one anonymous upload. The
limits are read from the func.yaml of each function that cleans photos, never written here, so a
pod made smaller (or a limit raised) is measured again.
"""

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lscloud import images

ROOT = Path(__file__).resolve().parents[2]
CLEANS = re.compile(r"\bimages\.(keep|clean)\(")
UNITS = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "K": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "": 1}


def _bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMG]i?)?", str(quantity)).groups()
    return int(number) * UNITS[unit or ""]


def uploading_limits() -> dict[str, int]:
    """The memory limit (bytes) of every function whose code cleans photos."""
    limits = {}
    for manifest in sorted((ROOT / "functions").glob("*/func.yaml")):
        code = manifest.parent / "function"
        if not any(CLEANS.search(p.read_text(encoding="utf-8")) for p in code.glob("*.py")):
            continue
        options = yaml.safe_load(manifest.read_text(encoding="utf-8"))["deploy"]["options"]
        limits[manifest.parent.name] = _bytes(options["resources"]["limits"]["memory"])
    return limits


def test_the_functions_that_take_photos_are_found():
    assert {"reports", "market", "community"} <= set(uploading_limits())


# the pixels as big as allowed, 4:3; generated in a child so that the test's own process stays small
MAKE = """
import sys
from PIL import Image
kind, w, h, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if kind == "jpeg":   # a portrait phone photo: stored sideways, EXIF says turn it (the costliest)
    im = Image.new("RGB", (w, h), (200, 10, 10))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(path, "JPEG", exif=exif)
elif kind == "png":  # the bomb of the survey: one colour, a few hundred KB
    Image.new("RGB", (w, h), (200, 10, 10)).save(path, "PNG", optimize=True)
else:                # with transparency: the display copy is resampled premultiplied, and a PNG
    Image.new("RGBA", (w, h), (200, 10, 10, 90)).save(path, "PNG", optimize=True)
"""

# the peak of the child that cleans, read by a parent that did nothing else (RUSAGE_CHILDREN of the
# test's process would also hold every earlier child's)
MEASURE = """
import resource, subprocess, sys
subprocess.run([sys.executable, "-c", sys.argv[1], *sys.argv[2:]], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""

CLEAN = """
import sys
from lscloud import images
path, media_type, pixels = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = images.clean(open(path, "rb").read(), media_type)
assert out.width * out.height == pixels and out.display is not None, (out.width, out.height)
"""


@pytest.mark.parametrize("kind, media_type", [("jpeg", "image/jpeg"), ("png", "image/png"),
                                              ("rgba", "image/png")])
def test_a_photo_at_the_pixel_limit_is_cleaned_within_the_smallest_pod(tmp_path, kind, media_type):
    width = math.isqrt(images.MAX_PIXELS * 4 // 3)
    height = images.MAX_PIXELS // width
    path = tmp_path / f"limit.{kind}"
    subprocess.run([sys.executable, "-c", MAKE, kind, str(width), str(height), str(path)], check=True)
    limits = uploading_limits()
    smallest = min(limits, key=limits.get)
    budget = limits[smallest] // images.DECODES_AT_ONCE
    done = subprocess.run([sys.executable, "-c", MEASURE, CLEAN, str(path), media_type, str(width * height)],
                          check=True, capture_output=True, text=True, cwd=ROOT)
    peak = int(done.stdout.split()[-1])
    assert peak < budget, (f"cleaning a {width}×{height} {kind} peaked at {peak >> 20} MiB: {smallest}'s limit "
                           f"{limits[smallest] >> 20} MiB / {images.DECODES_AT_ONCE} decodes at once "
                           f"= {budget >> 20} MiB")


def test_a_phone_photo_passes_and_a_full_sensor_one_is_refused_in_both_languages(tmp_path):
    # 12 MP (4032×3024) as every phone sends by default; 48 MP (8064×6048), a full-sensor mode
    # PNGs of one colour: the size is in the header, and refusing needs nothing more
    def png(w, h):
        path = tmp_path / f"{w}x{h}.png"
        subprocess.run([sys.executable, "-c", MAKE, "png", str(w), str(h), str(path)], check=True)
        return path.read_bytes()

    assert images.clean(png(4032, 3024), "image/png", display=False).width == 4032

    class Photos:
        def put(self, *a):
            raise AssertionError("a refused photo is never stored")

    from lscloud import errors

    with pytest.raises(errors.Invalid) as refused:
        images.keep(Photos(), png(8064, 6048), "image/png")
    problem = refused.value
    assert problem.status == 422
    [item] = problem.errors
    assert item["field"] == "body"
    assert "8064×6048" in item["message"] and "megapixels" in item["message"]
    assert "8064×6048" in item["message_vi"] and "megapixel" in item["message_vi"]
