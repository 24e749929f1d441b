"""Photos from people's phones, made safe to keep and to show: decoded, re-encoded, metadata gone.

A phone's JPEG carries EXIF: the GPS position where it was taken (often a home), the time, the
camera's serial number. A photo a field worker or a seller uploads must not publish any of it.
Removing only the GPS block would keep whatever else a tag could hold (maker notes, XMP, an
embedded thumbnail that still shows the uncropped picture), so :func:`clean` decodes the image
with Pillow, applies the EXIF orientation to the pixels (the picture still stands the right way
up), and encodes fresh pixels with no metadata at all. Re-encoding also drops anything appended
to or hidden in the file (a polyglot), and the pixel limit refuses decompression bombs.

Deterministic: the same upload gives the same bytes, hence the same content-addressed blob, so an
offline app that uploads a photo twice stores it once.

A phone's 12 MP photo stays 4032×3024 pixels, several megabytes a product photo on a shop page
opened over 3G. :func:`keep` therefore stores beside it a display rendition (its long side at most
:data:`DISPLAY_LONG_SIDE`), made from the same upright pixels with no metadata either, which the
photo routes serve for ``?size=display`` (:func:`display`). A photo already that small has none: its
display answer is the photo itself. A photo stored before renditions existed gets its rendition
made on its first display request and stored then (once per photo, create-only: two requests at
once make the same bytes), rather than sending its megabytes to every phone for good.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MEDIA_TYPES = ("image/jpeg", "image/png")
MAX_PIXELS = 25_000_000
"""The largest photo taken, in pixels. What phones send by default passes: 12 MP (4032×3024, and the
4080×3072 a 50 MP sensor bins to), the 13 and 16 MP of cheaper phones, the 24 MP (5712×4284) of
recent iPhones. The full-sensor 48/50/108/200 MP modes, chosen by hand, are refused (a 422 asking
for the usual size): no report or shop page needs them, and cleaning is what bounds this. Cleaning
holds at most two full-size copies of 4 bytes a pixel (a portrait photo is turned: the turned copy
is made while the decoded one is still held), some 200 MB at this bound; one decode at a time
(:data:`DECODES_AT_ONCE`) keeps that within the smallest pod that takes photos (384Mi, with the
app), where the 40 MP of before was 540 MB a decode, two at once: the replica was OOM-killed
(tests/unit/test_images_memory.py measures it against the func.yaml limits)."""
JPEG_QUALITY = 85
DISPLAY = "display"
"""The rendition's name (:meth:`lscloud.store.BlobStore.put_rendition`); ``claimed_only(..., renditions=RENDITIONS)``."""
RENDITIONS = (DISPLAY,)
DISPLAY_LONG_SIDE = 1600    # sharp on a phone's screen at full width; a 12 MP photo's bytes over 7
DISPLAY_QUALITY = 82
DECODES_AT_ONCE = 1
"""Photos decoded at once in a process. A photo at :data:`MAX_PIXELS` is some 200 MB while it is
decoded, turned and encoded (a 100 KB PNG of one colour can be one): two at once are more than a
384Mi pod holds beside the app, and the pods have one CPU, so a second decode would only share it.
The others wait their turn, up to :data:`WAIT_S`."""
WAIT_S = 20.0
_decoding = threading.BoundedSemaphore(DECODES_AT_ONCE)
_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}
# a picture past Pillow's own bomb bound (89 MP) is refused as it is opened, not warned about. Set
# once for the process: warnings.catch_warnings() around each decode swapped the process's filters
# back and forth under concurrent uploads and left them in whatever state the last one restored
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


class ImageRejected(ValueError):
    """The bytes are not an acceptable photo; ``field`` names what is wrong, ``str()`` says why
    (``message_vi`` in Vietnamese, when there is more to say than that the photo is refused)."""

    def __init__(self, message: str, field: str = "body", message_vi: str | None = None):
        super().__init__(message)
        self.field, self.message_vi = field, message_vi


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    media_type: str
    width: int
    height: int
    display: "CleanImage | None" = None
    """The display rendition (:data:`DISPLAY_LONG_SIDE`), None when the photo is no larger."""


def clean(data: bytes, media_type: str, *, display: bool = True) -> CleanImage:
    """``data`` (a JPEG or PNG, as ``media_type`` says) re-encoded without any metadata, with its
    display rendition unless ``display`` is false.

    Raises :class:`ImageRejected` for another type, bytes that are not that image, or a picture
    over :data:`MAX_PIXELS`.
    """
    media_type = (media_type or "").split(";", 1)[0].strip().lower()
    if media_type not in _FORMATS:
        raise ImageRejected(f"a photo must be one of {', '.join(MEDIA_TYPES)}, not {media_type or 'nothing'}",
                            field="Content-Type")
    _take_turn()
    try:
        return _clean(data, media_type, display)
    finally:
        _decoding.release()


def _take_turn() -> None:
    if not _decoding.acquire(timeout=WAIT_S):
        from .errors import Unavailable

        raise Unavailable("too many photos are being processed: send it again in a moment",
                          detail_vi="Đang xử lý nhiều ảnh: vui lòng gửi lại sau giây lát.", retry_after_s=5)


def _clean(data: bytes, media_type: str, display: bool) -> CleanImage:
    # at most two full-size copies of the pixels are ever held (while one is turned or converted
    # into the next, the first is freed as soon as it is done): MAX_PIXELS is bounded by that
    try:
        with Image.open(io.BytesIO(data), formats=[_FORMATS[media_type]]) as img:
            _check_size(img)
            img.load()
            _upright(img)
            pixels = _encodable(img, media_type)
            small = _display(pixels) if display else None
            return CleanImage(_encode(pixels, media_type, JPEG_QUALITY), media_type, pixels.width, pixels.height,
                              small)
    except ImageRejected:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning, OSError,
            ValueError, SyntaxError) as exc:
        raise ImageRejected(f"the body is not a readable {media_type} image ({exc.__class__.__name__})") from None


def _check_size(img: Image.Image) -> None:
    if img.width * img.height > MAX_PIXELS:
        raise ImageRejected(
            f"the photo has {img.width}×{img.height} pixels, more than {MAX_PIXELS // 1_000_000} megapixels: "
            "send it at a phone camera's usual size (12 MP)",
            message_vi=f"Ảnh có {img.width}×{img.height} điểm ảnh, quá {MAX_PIXELS // 1_000_000} megapixel: vui lòng "
                       "gửi ảnh ở cỡ thường của máy ảnh điện thoại (12 MP).")


def _encodable(img: Image.Image, media_type: str) -> Image.Image:
    """``img`` in a mode the format is written in: itself, or converted with the original's pixels
    freed at once (a CMYK JPEG or a 16-bit PNG would otherwise be held twice while it is encoded)."""
    modes = ("RGB", "L") if media_type == "image/jpeg" else ("RGB", "RGBA", "L", "LA", "P", "1")
    if img.mode in modes:
        return img
    converted = img.convert("RGB" if media_type == "image/jpeg" else "RGBA")
    img.close()
    return converted


def _encode(img: Image.Image, media_type: str, quality: int) -> bytes:
    out = io.BytesIO()
    if media_type == "image/jpeg":
        pixels = img if img.mode in ("RGB", "L") else img.convert("RGB")
        # no exif=, no icc_profile=, no comment: Pillow writes none of them unless asked. optimize=
        # makes libjpeg hold every coefficient (1.5 bytes a pixel), less than the turned copy
        # _upright held a moment before: it does not raise the peak
        pixels.save(out, "JPEG", quality=quality, optimize=True)
    else:
        pixels = img if img.mode in ("RGB", "RGBA", "L", "LA", "P", "1") else img.convert("RGBA")
        pixels.save(out, "PNG", optimize=True)
    return out.getvalue()


def _display(upright: Image.Image) -> CleanImage | None:
    """The display rendition of pixels already upright, or None if they are within the bound. A
    JPEG, but for a picture with transparency (a PNG's alpha would turn black): a PNG."""
    return None if max(upright.size) <= DISPLAY_LONG_SIDE else _shrink(upright)


def _shrink(img: Image.Image, size: tuple[int, int] | None = None) -> CleanImage:
    """``img`` made at most :data:`DISPLAY_LONG_SIDE` on its long side (as ``thumbnail()`` sizes it).
    ``resize(reducing_gap=)`` first box-reduces by a whole factor (``Image.reduce()``) and only then
    resamples: unlike ``copy()`` + ``thumbnail()`` it never holds a second full-size copy."""
    small = img.resize(size or _display_size(img.width, img.height), Image.Resampling.LANCZOS, reducing_gap=2.0)
    alpha = small.mode in ("RGBA", "LA", "PA") or (small.mode == "P" and "transparency" in small.info)
    media_type = "image/png" if alpha else "image/jpeg"
    return CleanImage(_encode(small, media_type, DISPLAY_QUALITY), media_type, small.width, small.height)


def _display_size(width: int, height: int) -> tuple[int, int]:
    """The size ``thumbnail((DISPLAY_LONG_SIDE,) * 2)`` gives: the short side rounded to keep the aspect."""
    side, aspect = DISPLAY_LONG_SIDE, width / height

    def nearest(number: float, off) -> int:
        return max(min(math.floor(number), math.ceil(number), key=off), 1)

    if aspect <= 1:
        return nearest(side * aspect, lambda n: abs(aspect - n / side)), side
    return side, nearest(side / aspect, lambda n: 0 if n == 0 else abs(aspect - side / n))


def _upright(img: Image.Image) -> None:
    """``img`` turned, in place, as its EXIF orientation says (the turned copy replaces the pixels:
    never three copies at once); left as it is when its EXIF cannot be read (a broken tag's value
    raised struct.error or TypeError out of Pillow: a 500 for a 681-byte upload). The EXIF goes
    anyway: the pixels are encoded afresh."""
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception:  # noqa: BLE001 - Pillow's EXIF parser raises whatever a malformed tag makes it
        pass


def has_location(data: bytes) -> bool:
    """Whether the image's EXIF holds a GPS block (for tests and audits of stored photos)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return bool(img.getexif().get_ifd(0x8825))
    except (UnidentifiedImageError, OSError, ValueError):
        return False


__all__ = ["MEDIA_TYPES", "MAX_PIXELS", "DISPLAY", "RENDITIONS", "DISPLAY_LONG_SIDE", "ImageRejected", "CleanImage",
           "clean", "has_location", "keep", "display", "sized", "SIZE_PARAM"]


def keep(blobs, data: bytes, media_type: str, *, display: bool = True):
    """An uploaded photo cleaned (:func:`clean`) and stored in ``blobs`` (a
    :class:`lscloud.store.Blobs` limited to :data:`MEDIA_TYPES`) with its display rendition (none
    when ``display`` is false: photos no route serves): ``(BlobRef, CleanImage)``.

    Anything refused is a 422 naming the field (``body``, or what :class:`ImageRejected` names),
    in both languages: the one answer every function that takes photos gives.
    """
    from . import errors
    from .store import BlobRejected

    try:
        image = clean(data, media_type, display=display)
        ref = blobs.put(image.data, image.media_type)
        if display:   # after the photo: a rendition recorded for a photo not stored would never be swept
            small = image.display
            blobs.put_rendition(ref.sha256, DISPLAY, small and small.data, small.media_type if small else "")
        return ref, image
    except ImageRejected as exc:
        raise errors.Invalid.at(exc.field, str(exc), exc.message_vi or "Ảnh không hợp lệ.") from None
    except BlobRejected as exc:
        raise errors.Invalid.at("body", str(exc), "Ảnh không hợp lệ.") from None


SIZE_PARAM = ("size", "original (the default: as uploaded, without its metadata) or display (its long side at most "
              f"{DISPLAY_LONG_SIDE} px, for a page on a phone; the original itself when it is that small)",
              {"type": "string", "enum": ["original", DISPLAY], "default": "original"})
"""The photo routes' ``?size=`` (``@query_params(images.SIZE_PARAM)``), answered by :func:`sized`."""


def sized(blobs, sha256: str, size: str):
    """``(store, digest)`` that answers photo ``sha256`` at ``size``: ``blob_response(*sized(...))``
    (a rendition's ETag is its own digest, the original's is the photo's)."""
    return display(blobs, sha256) if size == DISPLAY else (blobs, sha256)


def display(blobs, sha256: str):
    """Where photo ``sha256``'s display rendition is: ``(store, digest)`` to answer from (the photo
    itself when it is small). A photo stored before renditions existed gets one now, stored for the
    next request. DoesNotExist / InvalidKey as :meth:`lscloud.store.BlobStore.read`."""
    made = blobs.rendition(sha256, DISPLAY)
    if made == sha256.lower() or (made is not None and blobs.renditions(DISPLAY).exists(made)):
        return (blobs if made == sha256.lower() else blobs.renditions(DISPLAY)), made
    if made is not None:   # the same bytes were another photo's rendition, swept with it: made again
        blobs.drop_rendition(sha256, DISPLAY, index_only=True)
    with Image.open(io.BytesIO(blobs.get(sha256))) as img:
        small = None
        if max(img.size) > DISPLAY_LONG_SIDE:   # else its header was all there was to read
            _take_turn()
            try:
                # stored photos are upright and clean already; a JPEG decodes at a fraction of its size
                size = _display_size(img.width, img.height)
                img.draft(img.mode, (DISPLAY_LONG_SIDE, DISPLAY_LONG_SIDE))
                small = _shrink(img, size)
            finally:
                _decoding.release()
    made = blobs.put_rendition(sha256, DISPLAY, small and small.data, small.media_type if small else "")
    if not blobs.exists(sha256):
        # deleted unclaimed while this was made: what the sweep missed goes too
        from .store import DoesNotExist

        blobs.drop_rendition(sha256, DISPLAY)
        raise DoesNotExist(f"photo {sha256} is gone", key=blobs.key_for(sha256))
    return (blobs if made == sha256.lower() else blobs.renditions(DISPLAY)), made
