"""The ids the environment's routes name, matched and documented by the schema that gives each its
shape (:mod:`lscloud.web.pathparams`)."""

STATION_ID = 'schema("environment/station-create.json#/properties/id"):station_id'
"""A station's id, as its registration names it."""
ENTITY_ID = 'schema("environment/entity-id.json", match=False):entity_id'
"""An NGSI-LD entity's id (a station's URN); any segment routes, so what is not one of ours is the
view's NGSI-LD ResourceNotFound, not the router's plain 404."""
