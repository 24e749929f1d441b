"""Photos are stored without their metadata (lscloud.images): no GPS position, nothing hidden."""

import io

import pytest
from PIL import Image

from lscloud import images


def phone_photo(orientation: int | None = None) -> bytes:
    """A small JPEG as a phone writes it: EXIF with a GPS block (Lạng Sơn) and a camera serial."""
    img = Image.new("RGB", (40, 20), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0110] = "Phone X"                  # Model
    exif[0xA431] = "SERIAL-123456"            # BodySerialNumber
    if orientation:
        exif[0x0112] = orientation
    gps = {1: "N", 2: (21.0, 50.0, 0.0), 3: "E", 4: (106.0, 45.0, 0.0)}
    exif[0x8825] = gps
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_a_phone_photo_loses_its_position_and_every_other_tag():
    raw = phone_photo()
    assert images.has_location(raw) and b"SERIAL-123456" in raw
    clean = images.clean(raw + b"<script>appended</script>", "image/jpeg")
    assert not images.has_location(clean.data)
    assert b"SERIAL-123456" not in clean.data and b"appended" not in clean.data
    with Image.open(io.BytesIO(clean.data)) as img:
        assert len(img.getexif()) == 0 and img.format == "JPEG"
    assert images.clean(raw, "image/jpeg").data == images.clean(raw, "image/jpeg").data  # deterministic


def test_the_orientation_is_applied_to_the_pixels_before_the_tag_goes():
    clean = images.clean(phone_photo(orientation=6), "image/jpeg")   # 6: rotate 90° to stand upright
    assert (clean.width, clean.height) == (20, 40)


@pytest.mark.parametrize("data, media_type, field", [
    (b"%PDF-1.4 not a photo", "image/jpeg", "body"),
    (b"\x89PNG\r\n\x1a\nbroken", "image/png", "body"),
    (phone_photo(), "image/png", "body"),          # a JPEG declared as PNG
    (phone_photo(), "image/gif", "Content-Type"),
])
def test_what_is_not_a_photo_is_refused_naming_why(data, media_type, field):
    with pytest.raises(images.ImageRejected) as err:
        images.clean(data, media_type)
    assert err.value.field == field


def test_a_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    with pytest.raises(images.ImageRejected):
        images.clean(phone_photo(), "image/jpeg")


def test_photos_cleaned_at_once_leave_the_process_warning_filters_as_they_were():
    """Each decode swapped the process's warning filters in and out (warnings.catch_warnings is
    process-wide): concurrent uploads restored each other's copies and left them changed for good."""
    import warnings

    from races import at_once

    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, "PNG")
    png = buf.getvalue()
    images.clean(png, "image/png")
    before = list(warnings.filters)
    assert at_once(lambda _: [images.clean(png, "image/png") for _ in range(150)], 8) == []
    assert warnings.filters == before


# a 681-byte JPEG whose EXIF orientation tag is malformed (found by mutating a phone photo)
BROKEN_EXIF = "/9j/4AAQSkZJRgABAQAAAQABAAD/4QAuRXhpZgAATU0AKgAAAAgAAgEjAAIAAAAEY2FtAAESAAMAAAABAAYAAAAAAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHiYaHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjL/wAARCAAQABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEIJEKxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8r/09fb3+Pn6/9oADAMBAAIRAxEAPwDgqKKK8M/VD//Z"


def test_a_photo_whose_exif_cannot_be_read_is_cleaned_as_it_stands():
    """Pillow's EXIF parser raised struct.error on this upload: a 500 on the public photo routes
    (reports, market). Its pixels are kept as they stand, and its metadata goes as always."""
    import base64

    out = images.clean(base64.b64decode(BROKEN_EXIF), "image/jpeg")
    assert (out.width, out.height) == (16, 16) and not images.has_location(out.data)


def test_photos_decode_a_few_at_a_time_and_a_caller_waits_its_turn_within_a_bound(monkeypatch):
    """A 40 MP picture is some 300 MB while it is decoded: as many at once as a replica has request
    threads was far past its memory. Two decode at once; another waits, at most WAIT_S, then is a
    503 to send again."""
    from lscloud import errors

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    monkeypatch.setattr(images, "WAIT_S", 0.05)
    held = [images._decoding.acquire(timeout=1) for _ in range(images.DECODES_AT_ONCE)]
    try:
        assert all(held)
        with pytest.raises(errors.Unavailable):
            images.clean(buf.getvalue(), "image/png")
    finally:
        for _ in held:
            images._decoding.release()
    assert images.clean(buf.getvalue(), "image/png").width == 8


def test_a_large_photo_has_a_display_rendition_upright_bounded_and_without_metadata():
    """A 12 MP phone photo was kept and served at its full size: several megabytes a photo on 3G."""
    img = Image.merge("RGB", [Image.effect_noise((2400, 1800), 50) for _ in range(3)])
    exif = Image.Exif()
    exif[0x0112] = 6                                  # rotate 90° to stand upright
    exif[0xA431] = "SERIAL-123456"
    exif[0x8825] = {1: "N", 2: (21.0, 50.0, 0.0), 3: "E", 4: (106.0, 45.0, 0.0)}
    raw = io.BytesIO()
    img.save(raw, "JPEG", exif=exif.tobytes())
    out = images.clean(raw.getvalue(), "image/jpeg")
    small = out.display
    assert (out.width, out.height) == (1800, 2400) and (small.width, small.height) == (1200, 1600)
    assert small.media_type == "image/jpeg" and len(small.data) < len(out.data)
    assert not images.has_location(small.data) and b"SERIAL-123456" not in small.data
    with Image.open(io.BytesIO(small.data)) as shown:
        assert shown.size == (1200, 1600) and len(shown.getexif()) == 0
    assert images.clean(raw.getvalue(), "image/jpeg").display.data == small.data   # deterministic


def test_a_photo_within_the_bound_has_no_rendition_and_a_transparent_png_stays_png():
    assert images.clean(phone_photo(), "image/jpeg").display is None
    buf = io.BytesIO()
    Image.new("RGBA", (2000, 400), (10, 200, 10, 128)).save(buf, "PNG")
    small = images.clean(buf.getvalue(), "image/png").display
    assert small.media_type == "image/png" and (small.width, small.height) == (1600, 320)
    with Image.open(io.BytesIO(small.data)) as shown:
        assert shown.mode == "RGBA"
    buf = io.BytesIO()
    Image.new("RGB", (2000, 400), (10, 200, 10)).save(buf, "PNG")   # no transparency: a JPEG is smaller
    assert images.clean(buf.getvalue(), "image/png").display.media_type == "image/jpeg"
