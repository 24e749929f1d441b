"""The ids the environment's routes name, matched and documented by the schema that gives each its
shape (:mod:`lscloud.web.pathparams`)."""

STATION_ID = 'schema("environment/station-create.json#/properties/id"):station_id'
"""A station's id, as its registration names it."""
