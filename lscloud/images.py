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


def clean(data: bytes, media_type: str) -> CleanImage:
    """``data`` (a JPEG or PNG, as ``media_type`` says) re-encoded without any metadata.

    Raises :class:`ImageRejected` for another type, bytes that are not that image, or a picture
    over :data:`MAX_PIXELS`.
    """
    media_type = (media_type or "").split(";", 1)[0].strip().lower()
    if media_type not in _FORMATS:
        raise ImageRejected(f"a photo must be one of {', '.join(MEDIA_TYPES)}, not {media_type or 'nothing'}",
                            field="Content-Type")
    if not _decoding.acquire(timeout=WAIT_S):
        from .errors import Unavailable

        raise Unavailable("too many photos are being processed: send it again in a moment",
                          detail_vi="Đang xử lý nhiều ảnh: vui lòng gửi lại sau giây lát.", retry_after_s=5)
    try:
        return _clean(data, media_type)
    finally:
        _decoding.release()


def _clean(data: bytes, media_type: str) -> CleanImage:
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
    out = io.BytesIO()
    if media_type == "image/jpeg":
        pixels = upright if upright.mode in ("RGB", "L") else upright.convert("RGB")
        # no exif=, no icc_profile=, no comment: Pillow writes none of them unless asked
        pixels.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        pixels = upright if upright.mode in ("RGB", "RGBA", "L", "LA", "P", "1") else upright.convert("RGBA")
        pixels.save(out, "PNG", optimize=True)
    return CleanImage(out.getvalue(), media_type, upright.width, upright.height)


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


__all__ = ["MEDIA_TYPES", "MAX_PIXELS", "ImageRejected", "CleanImage", "clean", "has_location", "keep"]


def keep(blobs, data: bytes, media_type: str):
    """An uploaded photo cleaned (:func:`clean`) and stored in ``blobs`` (a
    :class:`lscloud.store.Blobs` limited to :data:`MEDIA_TYPES`): ``(BlobRef, CleanImage)``.

    Anything refused is a 422 naming the field (``body``, or what :class:`ImageRejected` names),
    in both languages: the one answer every function that takes photos gives.
    """
    from . import errors
    from .store import BlobRejected

    try:
        image = clean(data, media_type)
        return blobs.put(image.data, image.media_type), image
    except ImageRejected as exc:
        raise errors.Invalid.at(exc.field, str(exc), "Ảnh không hợp lệ.") from None
    except BlobRejected as exc:
        raise errors.Invalid.at("body", str(exc), "Ảnh không hợp lệ.") from None

