"""The market function's app: digital shops, traceable lots, stamps and their scans."""

from __future__ import annotations

from pathlib import Path

from lscloud.peers import PeerClient
from lscloud.ratelimit import Limiter
from lscloud.web import create_app as runtime_app

from . import routes_lots, routes_scan, routes_shops, settings as market_settings, stampkeys
from .models import ScanRate

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


def create_app(settings=None):
    app = runtime_app("market", schemas_dir=SCHEMAS_DIR, settings=settings, openapi={
        "title": "Lạng Sơn digital market (cửa hàng số, truy xuất nguồn gốc)", "version": "1.0.0",
        "description": "Digital shops with VietQR payment codes; traceable lots, signed QR stamps and their scans."})
    platform = app.extensions["lscloud"].settings
    own = market_settings.of(platform)                   # a bad MARKET_* value stops the start
    app.config["MARKET"] = own
    app.config["MARKET_KEYS"] = stampkeys.load(own, platform)
    app.config["MARKET_PEERS"] = PeerClient(platform)
    # scans are public and anonymous: each caller's are limited (MARKET_SCAN_RATE_*)
    app.config["MARKET_SCAN_LIMITER"] = Limiter(ScanRate, limit=own.scan_rate_limit, window_s=own.scan_rate_window_s)
    for bp in (routes_shops.bp, routes_lots.bp, routes_scan.bp):
        app.register_blueprint(bp)
    return app
