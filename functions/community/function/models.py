"""The community teams' records in the store.

A team and an activity are documents changed through :class:`lscloud.aggregate.Aggregate`.
What is *counted* is kept as create-only membership objects (a tally): one per household reached
per indicator (keyed by the household's pseudonym, so a household reached twice counts once), one
per verified activity per team and per commune. The counts themselves are kept in the progress
documents, each member added once, by the verification whose create wrote it; a verification being
counted is a :class:`Counting` entry until its counts hold its members (:mod:`.tallies`).
"""

from __future__ import annotations

from lscloud.store import Model, attributes as A


class Team(Model):
    class Meta:
        table = "community-teams"

    id = A.UnicodeAttribute(hash_key=True)
    status = A.UnicodeAttribute()
    commune = A.UnicodeAttribute()
    data = A.JSONAttribute()
    version = A.VersionAttribute()
    # what the forming request was (keyed digests only, lscloud.idempotency.first_request): the team
    # is its own idempotency record, so a resend is answered from it; a team formed before has none
    request = A.JSONAttribute(null=True)
    # the forming's transition: a resend finishes its audit entry, its commune's index and its
    # event (Aggregate.resend); none on a team formed before it
    created = A.JSONAttribute(null=True)


class TeamAudit(Model):
    class Meta:
        table = "community-teams-audit"

    team_id = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()


class TeamByCommune(Model):
    class Meta:
        table = "community-teams-by-commune"

    commune = A.UnicodeAttribute(hash_key=True)
    team_id = A.UnicodeAttribute(range_key=True)


class TeamByMember(Model):
    """The teams whose roster lists a member, keyed by the roster's own pseudonym of the member
    (:func:`.teams.member_ref`): what an erasure request finds the person's rosters by. Written
    create-only before the roster that lists them (:mod:`.teams`), so an entry may lead to a team
    that does not list the member (a write that did not land), never the other way round."""

    class Meta:
        table = "community-teams-by-member"

    member = A.UnicodeAttribute(hash_key=True)
    team_id = A.UnicodeAttribute(range_key=True)


class Activity(Model):
    """One activity, keyed by the client id the field app gave it offline."""

    class Meta:
        table = "community-activities"

    id = A.UnicodeAttribute(hash_key=True)
    status = A.UnicodeAttribute()
    data = A.JSONAttribute()
    version = A.VersionAttribute()
    # the log's transition: a resend of the activity finishes its audit entry, its place on the
    # officer's queue and its event (Aggregate.resend); none on an activity stored before it
    created = A.JSONAttribute(null=True)
    # the last move's transitions: a refused retry of a move cut off after its write finishes its
    # audit, indexes and events (Aggregate._finish_moved)
    moved = A.JSONAttribute(null=True)


class ActivityAudit(Model):
    class Meta:
        table = "community-activities-audit"

    activity_id = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()


class Pending(Model):
    """The commune officer's queue: activities waiting for verification (deleted once decided)."""

    class Meta:
        table = "community-pending"

    commune = A.UnicodeAttribute(hash_key=True)
    activity_id = A.UnicodeAttribute(range_key=True)


class Tally(Model):
    """One member of a counted set: ``tally`` names the set (``<commune>.<indicator>``,
    ``team.<team>.<kind>``, ``commune.<commune>.<kind>``), ``member`` the thing counted once."""

    class Meta:
        table = "community-tallies"

    tally = A.UnicodeAttribute(hash_key=True)
    member = A.UnicodeAttribute(range_key=True)


class Counting(Model):
    """A verification being counted: written before its members, deleted once the progress documents
    hold them. One left behind (a crash in between) is found by the clock's tick (:mod:`.recount`).
    ``entry`` is ``<started at, UTC, microseconds> <activity id> <nonce>``, so the old ones list first;
    ``data`` names what the activity joins (its id, commune, team, kind, household pseudonym)."""

    class Meta:
        table = "community-counting"
        working = True   # in flight only: not kept with the records under object lock

    state = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()


class CommuneProgress(Model):
    class Meta:
        table = "community-progress"

    commune = A.UnicodeAttribute(hash_key=True)
    data = A.JSONAttribute()


class TeamProgress(Model):
    class Meta:
        table = "community-team-progress"

    commune = A.UnicodeAttribute(hash_key=True)
    team_id = A.UnicodeAttribute(range_key=True)
    data = A.JSONAttribute()
