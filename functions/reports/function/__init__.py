"""Citizen reports (phản ánh kiến nghị): Open311 GeoReport v2 compatible, with FixMyStreet's states,
routing to the responsible agency, deadlines in working days, ratings and stats for the IOC."""

from .func import new

__all__ = ["new"]
