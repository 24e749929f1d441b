"""The environment function's app: assembled from its blueprints."""

from pathlib import Path

from lscloud.web import create_app as runtime_app

from . import routes_aqi, routes_ngsi, routes_observations, routes_stations, settings

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


def create_app(platform):
    app = runtime_app("environment", schemas_dir=SCHEMAS_DIR, settings=platform,
                      openapi={"title": "Environment monitoring (quan trắc môi trường)", "version": "1.0.0",
                               "description": "IoT stations, VN_AQI (Decision 1459/QĐ-TCMT), noise against "
                                              "QCVN 26:2010/BTNMT, alerts, NGSI-LD (ETSI GS CIM 009)."})
    app.config["PLATFORM"] = platform
    app.config["ENVIRONMENT"] = settings.of(platform)   # a bad ENVIRONMENT_* value stops the start
    for bp in (routes_stations.bp, routes_observations.bp, routes_aqi.bp, routes_ngsi.bp):
        app.register_blueprint(bp)
    return app
