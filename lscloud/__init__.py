"""Lạng Sơn Cloud's shared runtime: config, store, bus, web, auth, telemetry, knative, local cloud."""

__version__ = "0.1.0"
