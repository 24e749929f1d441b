"""Environment monitoring (quan trắc môi trường): IoT stations, VN_AQI, NGSI-LD."""

from .func import new

__all__ = ["new"]
