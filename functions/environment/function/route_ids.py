"""The ids the environment's routes name, matched and documented by the schema that gives each its
shape (:mod:`lscloud.web.pathparams`)."""

STATION_ID = 'schema("environment/station-create.json#/properties/id"):station_id'
"""A station's id, as its registration names it."""
ENTITY_ID = 'schema("environment/entity-id.json", match=False):entity_id'
"""An NGSI-LD entity's id (a station's URN); any segment routes, so the view answers with NGSI-LD's
problem types, not the router's plain 404: BadRequestData for a segment that is not a URI at all,
ResourceNotFound for a URI that is not one of ours (ETSI GS CIM 009 5.7.1.4, 5.7.3.4)."""
