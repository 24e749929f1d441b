"""The public side of a stamp: the scan, and the keys to check a code offline."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from lscloud import errors
from lscloud.auth import allow, principal
from lscloud.ratelimit import caller_subject
from lscloud.web import query_params, responds
from lscloud.web.caching import cached_json, caching

from . import scans, stampcode, stampkeys, stamps

bp = Blueprint("market_scan", __name__)


# any segment routes (match=False): what is not a code is still answered, authentic: false, reason malformed
@bp.get('/v1/stamps/<schema("market/stamp-code.json", match=False):code>')
@allow("public")
@responds("market/scan.json",
          also={429: "Too many scans from this caller (MARKET_SCAN_RATE_LIMIT): wait Retry-After seconds"})
@query_params(("lat", "where the scan happens, if the shopper shares it (kept to 0.1°)",
               {"type": "number", "minimum": -90, "maximum": 90}),
              ("lon", "longitude, with lat", {"type": "number", "minimum": -180, "maximum": 180}))
def scan(code: str):
    """Scan a stamp: ``authentic`` (signature, issued batch) and the lot's origin and journey;
    a code that was never issued or was altered is ``authentic: false``. Every scan is counted.
    ``key`` names the published key that verified it: ``retired`` for a stamp printed before a
    key rotation (still authentic), ``current`` for one the service signs now. A copy flag counts
    callers, not scans (:mod:`.scans`), and ``copy_evidence`` says what it rests on."""
    caller = caller_subject(principal(), request.headers, request.remote_addr)
    # counted before the work: a flood from one caller costs its counter's write, not the scan's
    current_app.config["MARKET_SCAN_LIMITER"].hit(caller)
    lat, lon = g.query["lat"], g.query["lon"]
    if (lat is None) != (lon is None):
        raise errors.Invalid.at("lon" if lon is None else "lat", "give both lat and lon, or neither",
                                "Cần gửi cả vĩ độ (lat) và kinh độ (lon), hoặc không gửi cả hai.")
    cfg = current_app.config["MARKET"]
    place = scans.Place.coarse(lat, lon) if lat is not None else None
    rules = {"scan_limit": cfg.scan_limit, "copy_distance_km": cfg.copy_distance_km,
             "copy_speed_kmh": cfg.copy_speed_kmh}
    keys = current_app.config["MARKET_KEYS"]
    answer = stamps.scan(code, place, keys, rules, caller)
    if answer["authentic"]:
        # an inspector checking a stamp offline needs the kid; "retired" tells why it differs from new stamps'
        index = stampcode.decode(code).key_index
        answer["key"] = {"kid": str(index), "status": keys.status(index)}
    return jsonify(answer)


STAMP_KEYS_CACHE = "public, max-age=3600"


@bp.get("/v1/stamp-keys")
@allow("public")
@responds("market/stamp-keys.json", **caching(STAMP_KEYS_CACHE))
def stamp_keys():
    """The province's public stamp keys (JWK set, RFC 8037) and the code's layout: enough to verify
    a stamp offline. After a key rotation the older keys stay listed (``status: retired``): the
    stamps they signed are still on products."""
    keys = current_app.config["MARKET_KEYS"]
    return cached_json({**keys.jwks(), "format": stampkeys.describe_format()}, cache_control=STAMP_KEYS_CACHE)
