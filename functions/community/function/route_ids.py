"""The ids the community routes name, matched and documented by the schema that gives each its
shape (:mod:`lscloud.web.pathparams`): a segment of another shape is not that route's at all, so
``/v1/activities/sync`` is never read as an activity called "sync"."""

ACTIVITY_ID = 'schema("community/activities-sync.json#/properties/activities/items/properties/client_id"):activity_id'
"""An activity's id: the client id the phone made."""
TEAM_ID = 'schema("community/team-create.json#/properties/id"):team_id'
"""A team's id, as its create names it."""
COMMUNE = 'schema("community/team-create.json#/properties/commune"):commune'
"""A commune's code (five digits), as a team's create names it."""
