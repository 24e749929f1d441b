"""The market function's own settings (``MARKET_*``), read and checked by :func:`lscloud.config.section`."""

from __future__ import annotations

from dataclasses import dataclass, field

from lscloud import config


@dataclass(frozen=True)
class Settings:
    # the province's stamp-signing key: an Ed25519 private key, PEM (PKCS#8), from a cluster secret;
    # locally, when unset, one is made once under <state dir>/keys/market-stamp.pem
    stamp_key: str = field(default="", repr=False)
    # which published key the codes name (0-15): a rotation publishes a new index
    stamp_key_index: int = field(default=0, metadata={"min": 0, "max": 15})
    # the keys signed with before a rotation, public halves only (a config map, no secret): stamps on
    # shelves stay authentic. ``index:key`` pairs (32 raw bytes, base64url) or the JWK set published
    # then; an index given two keys, or the signing key or its index, stops the start (stampkeys.py)
    stamp_retired_keys: str = ""
    # what the stamp's QR code holds: this URL followed by the code (the public scan). It is printed
    # and scanned for years; unset, the platform's public URL of the function (LSCLOUD_PUBLIC_URL_TEMPLATE)
    scan_url: str = ""
    max_batch: int = field(default=100_000, metadata={"min": 1, "max": 1_000_000})
    # a POST returns the codes inline up to this many; larger batches fetch …/codes
    inline_codes: int = field(default=1_000, metadata={"min": 1, "max": 100_000})
    sheet_max: int = field(default=240, metadata={"min": 1, "max": 5_000})   # 10 A4 pages
    # copy detection: more scans than this flags a stamp; so do two scans farther apart than
    # copy_distance_km whose implied speed is over copy_speed_kmh
    scan_limit: int = field(default=50, metadata={"min": 2})
    copy_distance_km: float = field(default=100.0, metadata={"min": 1})
    copy_speed_kmh: float = field(default=200.0, metadata={"min": 1})
    # scans per caller per window: a shopper scans a few stamps, an inspector at a truck one every
    # few seconds; one IPv4 address can be many phones behind a carrier's NAT, hence room to spare
    scan_rate_limit: int = field(default=120, metadata={"min": 1})
    scan_rate_window_s: int = field(default=60, metadata={"min": 1, "max": 3_600})
    # the font of the printable sheets (Vietnamese needs more than the PDF standard fonts)
    pdf_font: str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def of(platform: config.Settings) -> Settings:
    from dataclasses import replace

    own = config.section(platform, Settings)
    if not own.scan_url:
        # never the peer URL: that is the cluster-internal Service, which no phone can reach
        own = replace(own, scan_url=platform.public_url("market") + "/v1/stamps/")
    return own
