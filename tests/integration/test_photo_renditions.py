"""Photos a phone on 3G can load: beside each uploaded photo a display rendition (long side at most
images.DISPLAY_LONG_SIDE, no metadata), served by ``GET /v1/photos/<sha256>?size=display`` of the
market and of reports, on real weed mini + nats-server. A 12 MP phone photo was served at its full
4032×3024 pixels, several megabytes a product photo on a shop page."""

from __future__ import annotations

import hashlib
import io
import time

import pytest
from PIL import Image

from digital_support import ok
from lscloud import images, runonce, runtime, store

pytestmark = pytest.mark.integration

HOUSEHOLD = "020095001234"
IMMUTABLE = "public, max-age=31536000, immutable"
BOUND = 1600   # images.DISPLAY_LONG_SIDE: a phone's screen at full width


def phone_photo(width: int, height: int, orientation: int | None = None) -> bytes:
    """A JPEG as a phone writes it (GPS block, camera serial, maybe an orientation): noisy pixels, so
    it compresses as a photo does, not as a flat colour."""
    img = Image.merge("RGB", [Image.effect_noise((width, height), 40 + 10 * i) for i in range(3)])
    exif = Image.Exif()
    exif[0xA431] = "SERIAL-123456"
    exif[0x8825] = {1: "N", 2: (21.0, 50.0, 0.0), 3: "E", 4: (106.0, 45.0, 0.0)}
    if orientation:
        exif[0x0112] = orientation
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80, exif=exif.tobytes())
    return out.getvalue()


def keys_under(prefix: str) -> list[str]:
    rt = runtime.current()
    return [o.key for o in rt.objects.list(rt.settings.bucket, prefix)]


@pytest.fixture
def market(start_function, peers):
    return start_function("market", peer_url_template=peers.template)


@pytest.fixture
def reports(start_function, peers):
    return start_function("reports", peer_url_template=peers.template)


def check_display(served, bound: int = BOUND) -> Image.Image:
    assert served.status_code == 200, served.get_data(as_text=True)
    assert served.content_type == "image/jpeg" and served.headers["Cache-Control"] == IMMUTABLE
    # content-addressed like the photo: its ETag is its own digest, never the original's
    assert served.headers["ETag"].strip('"') == hashlib.sha256(served.data).hexdigest()
    assert not images.has_location(served.data) and b"SERIAL-123456" not in served.data
    img = Image.open(io.BytesIO(served.data))
    assert max(img.size) <= bound and len(img.getexif()) == 0
    return img


def test_a_product_photo_has_a_display_rendition_upright_and_without_metadata(market, tokens):
    client = market.app.test_client()
    raw = phone_photo(2400, 1800, orientation=6)        # 6: turned 90° to stand upright
    photo = ok(client.post("/v1/photos", data=raw, headers={**tokens("citizen", HOUSEHOLD),
                                                           "Content-Type": "image/jpeg"}), 201)
    original = client.get(f"/v1/photos/{photo['sha256']}")   # the default stays the original
    assert original.status_code == 200 and Image.open(io.BytesIO(original.data)).size == (1800, 2400)
    assert original.headers["ETag"].strip('"') == photo["sha256"]
    served = client.get(f"/v1/photos/{photo['sha256']}", query_string={"size": "display"})
    img = check_display(served)
    assert img.size == (1200, 1600)                       # the orientation applied before EXIF went
    assert len(served.data) < len(original.data) / 2
    again = client.get(f"/v1/photos/{photo['sha256']}?size=display",
                       headers={"If-None-Match": served.headers["ETag"]})
    assert again.status_code == 304
    bad = client.get(f"/v1/photos/{photo['sha256']}?size=huge")
    assert bad.status_code == 400 and bad.get_json()["errors"][0]["field"] == "size"


def test_a_small_photo_gets_no_second_copy_and_its_display_answer_is_itself(market, tokens):
    client = market.app.test_client()
    raw = phone_photo(640, 480)
    photo = ok(client.post("/v1/photos", data=raw, headers={**tokens("citizen", HOUSEHOLD),
                                                           "Content-Type": "image/jpeg"}), 201)
    served = client.get(f"/v1/photos/{photo['sha256']}?size=display")
    assert served.status_code == 200 and served.headers["Cache-Control"] == IMMUTABLE
    assert served.data == store.blobs("market-photos").get(photo["sha256"])
    assert served.headers["ETag"].strip('"') == photo["sha256"]
    # nothing stored beside it but the note that it is its own rendition
    assert [k for k in keys_under("market-photos-display/") if "/of/" not in k] == []


def test_a_photo_stored_before_renditions_gets_one_on_its_first_display_request(reports):
    client = reports.app.test_client()
    photos = store.blobs("reports-photos", max_bytes=8 << 20, allowed_types=images.MEDIA_TYPES)
    # stored as uploads were before: the cleaned photo alone
    big = photos.put(images.clean(phone_photo(2000, 1500), "image/jpeg").data, "image/jpeg")
    small = photos.put(images.clean(phone_photo(300, 200), "image/jpeg").data, "image/jpeg")
    assert photos.rendition(big.sha256, images.DISPLAY) is None
    first = client.get(f"/v1/photos/{big.sha256}?size=display")
    assert check_display(first).size == (1600, 1200)
    made = photos.rendition(big.sha256, images.DISPLAY)
    assert made == first.headers["ETag"].strip('"') and photos.renditions(images.DISPLAY).exists(made)
    assert client.get(f"/v1/photos/{big.sha256}?size=display").data == first.data   # stored, the same
    tiny = client.get(f"/v1/photos/{small.sha256}?size=display")
    assert tiny.status_code == 200 and tiny.data == photos.get(small.sha256)
    assert client.get(f"/v1/photos/{'ab' * 32}?size=display").status_code == 404


def test_a_report_photo_has_its_display_rendition_and_an_unclaimed_one_goes_with_it(reports):
    client = reports.app.test_client()
    photo = ok(client.post("/v1/photos", data=phone_photo(2400, 1800), headers={"Content-Type": "image/jpeg"}), 201)
    check_display(client.get(f"/v1/photos/{photo['sha256']}?size=display"))
    assert len(keys_under("reports-photos-display/")) == 2     # the rendition and its note
    # nobody's report names it: the sweep deletes the photo, and its rendition with it
    rt = runtime.current()
    runonce.sweep(rt.objects, rt.settings.bucket, rt.settings, now=time.time() + 3 * 86_400)
    assert keys_under("reports-photos-display/") == [] and not store.blobs("reports-photos").exists(photo["sha256"])
    assert client.get(f"/v1/photos/{photo['sha256']}?size=display").status_code == 404


def test_two_first_display_requests_at_once_agree_on_one_rendition(reports):
    import threading

    photos = store.blobs("reports-photos", max_bytes=8 << 20, allowed_types=images.MEDIA_TYPES)
    old = photos.put(images.clean(phone_photo(1800, 1800), "image/jpeg", display=False).data, "image/jpeg")
    seen: dict[int, tuple[int, bytes, str]] = {}

    together = threading.Barrier(2)

    def ask(i: int) -> None:
        together.wait()
        r = reports.app.test_client().get(f"/v1/photos/{old.sha256}?size=display")
        seen[i] = (r.status_code, r.data, r.headers.get("ETag"))

    both = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in both:
        t.start()
    for t in both:
        t.join()
    assert seen[0] == seen[1] and seen[0][0] == 200
    assert [k for k in keys_under("reports-photos-display/") if "/of/" not in k] == [
        photos.renditions(images.DISPLAY).key_for(seen[0][2].strip('"'))]


def test_a_rendition_gone_with_another_photo_of_the_same_bytes_is_made_again(reports):
    """Two photos whose renditions have the same bytes share one object; the sweep of the one
    deletes it. The other's display request makes it again instead of a 404 for a photo that is there."""
    client = reports.app.test_client()
    photos = store.blobs("reports-photos", max_bytes=8 << 20, allowed_types=images.MEDIA_TYPES)
    kept = ok(client.post("/v1/photos", data=phone_photo(2000, 1600), headers={"Content-Type": "image/jpeg"}), 201)
    made = photos.rendition(kept["sha256"], images.DISPLAY)
    rt = runtime.current()
    rt.objects.delete(rt.settings.bucket, photos.renditions(images.DISPLAY).key_for(made))
    again = client.get(f"/v1/photos/{kept['sha256']}?size=display")
    assert check_display(again).size == (1600, 1280)
    assert photos.renditions(images.DISPLAY).exists(photos.rendition(kept["sha256"], images.DISPLAY))
