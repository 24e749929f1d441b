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
import threading
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MEDIA_TYPES = ("image/jpeg", "image/png")
MAX_PIXELS = 40_000_000     # a 48-megapixel phone photo is refused; 12 MP (4000×3000) is fine
JPEG_QUALITY = 85
DISPLAY = "display"
"""The rendition's name (:meth:`lscloud.store.BlobStore.put_rendition`); ``claimed_only(..., renditions=RENDITIONS)``."""
RENDITIONS = (DISPLAY,)
DISPLAY_LONG_SIDE = 1600    # sharp on a phone's screen at full width; a 12 MP photo's bytes over 7
DISPLAY_QUALITY = 82
DECODES_AT_ONCE = 2
"""Photos decoded at once in a process. A 40-megapixel picture is some 300 MB while it is decoded,
turned and encoded (a 170 KB PNG of one colour can be one): sixteen at once, as many as a replica
has request threads, are far past its memory. The others wait their turn, up to :data:`WAIT_S`."""
WAIT_S = 20.0
_decoding = threading.BoundedSemaphore(DECODES_AT_ONCE)
_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}
# a picture past Pillow's own bomb bound (89 MP) is refused as it is opened, not warned about. Set
# once for the process: warnings.catch_warnings() around each decode swapped the process's filters
# back and forth under concurrent uploads and left them in whatever state the last one restored
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


class ImageRejected(ValueError):
    """The bytes are not an acceptable photo; ``field`` names what is wrong, ``str()`` says why."""

    def __init__(self, message: str, field: str = "body"):
        super().__init__(message)
        self.field = field


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
    try:
        with Image.open(io.BytesIO(data), formats=[_FORMATS[media_type]]) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageRejected(f"the photo has {img.width}×{img.height} pixels, more than {MAX_PIXELS}")
            img.load()
            upright = _upright(img)
    except ImageRejected:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning, OSError,
            ValueError, SyntaxError) as exc:
        raise ImageRejected(f"the body is not a readable {media_type} image ({exc.__class__.__name__})") from None
    return CleanImage(_encode(upright, media_type, JPEG_QUALITY), media_type, upright.width, upright.height,
                      _display(upright) if display else None)


def _encode(img: Image.Image, media_type: str, quality: int) -> bytes:
    out = io.BytesIO()
    if media_type == "image/jpeg":
        pixels = img if img.mode in ("RGB", "L") else img.convert("RGB")
        # no exif=, no icc_profile=, no comment: Pillow writes none of them unless asked
        pixels.save(out, "JPEG", quality=quality, optimize=True)
    else:
        pixels = img if img.mode in ("RGB", "RGBA", "L", "LA", "P", "1") else img.convert("RGBA")
        pixels.save(out, "PNG", optimize=True)
    return out.getvalue()


def _display(upright: Image.Image) -> CleanImage | None:
    """The display rendition of pixels already upright, or None if they are within the bound. A
    JPEG, but for a picture with transparency (a PNG's alpha would turn black): a PNG."""
    return None if max(upright.size) <= DISPLAY_LONG_SIDE else _shrink(upright.copy())


def _shrink(small: Image.Image) -> CleanImage:
    small.thumbnail((DISPLAY_LONG_SIDE, DISPLAY_LONG_SIDE), Image.Resampling.LANCZOS)
    alpha = small.mode in ("RGBA", "LA", "PA") or (small.mode == "P" and "transparency" in small.info)
    media_type = "image/png" if alpha else "image/jpeg"
    return CleanImage(_encode(small, media_type, DISPLAY_QUALITY), media_type, small.width, small.height)


def _upright(img: Image.Image) -> Image.Image:
    """``img`` turned as its EXIF orientation says; as it is when its EXIF cannot be read (a broken
    tag's value raised struct.error or TypeError out of Pillow: a 500 for a 681-byte upload). The
    EXIF goes anyway: the pixels are encoded afresh."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - Pillow's EXIF parser raises whatever a malformed tag makes it
        return img


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
        raise errors.Invalid.at(exc.field, str(exc), "Ảnh không hợp lệ.") from None
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
                img.draft(img.mode, (DISPLAY_LONG_SIDE, DISPLAY_LONG_SIDE))
                small = _shrink(img)
            finally:
                _decoding.release()
    made = blobs.put_rendition(sha256, DISPLAY, small and small.data, small.media_type if small else "")
    if not blobs.exists(sha256):
        # deleted unclaimed while this was made: what the sweep missed goes too
        from .store import DoesNotExist

        blobs.drop_rendition(sha256, DISPLAY)
        raise DoesNotExist(f"photo {sha256} is gone", key=blobs.key_for(sha256))
    return (blobs if made == sha256.lower() else blobs.renditions(DISPLAY)), made
