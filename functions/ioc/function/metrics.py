"""The IOC's own metrics (OpenTelemetry, through :class:`lscloud.metrics.Instruments`): how much it
holds, what is left to pack, and what a start costs. Every fact stays in the IOC's memory and is read
back at each start (:mod:`.live`), so these are what an SRE watches before its memory limit is near.

===============================  =========  ===========================================================
instrument                       kind       attributes
===============================  =========  ===========================================================
``lscloud.ioc.facts``            gauge      ``lscloud.ioc.kind`` (declaration, dossier, transfer,
                                            observations …): facts and tallies the projection holds
``lscloud.ioc.facts.loose``      gauge      none: facts stored one object each, not packed yet
``lscloud.ioc.load.duration``    histogram  none: seconds a start took to read its facts back
``lscloud.ioc.events.unread``    counter    ``cloudevents.event_type``: events of another shape than
                                            their contract, skipped (no fact, no figure)
``lscloud.ioc.readings.late``    counter    ``lscloud.ioc.kind``: a station's message older than its
                                            tallies keep ids for, not counted (a repeat, or a very late one)
===============================  =========  ===========================================================

Prometheus names: ``lscloud_ioc_facts``, ``lscloud_ioc_facts_loose``, ``lscloud_ioc_readings_late_total``,
``lscloud_ioc_load_duration_seconds``, ``lscloud_ioc_events_unread_total``.
"""

from __future__ import annotations

import weakref

from lscloud.metrics import Instruments

_watched: list = []   # the live state of this process (a weak reference: tests start many)


def _live():
    return _watched[0]() if _watched else None


def _observe_facts(_options):
    from opentelemetry.metrics import Observation

    state = _live()
    return [] if state is None else [Observation(n, {"lscloud.ioc.kind": k}) for k, n in state.projection.counts().items()]


def _observe_loose(_options):
    from opentelemetry.metrics import Observation

    state = _live()
    return [] if state is None else [Observation(state.loose_count())]


def _create(m) -> dict:
    return {
        "facts": m.create_observable_gauge(
            "lscloud.ioc.facts", callbacks=[_observe_facts], unit="{fact}",
            description="Facts (and station-hour tallies) the IOC's live projection holds in memory, per kind."),
        "loose": m.create_observable_gauge(
            "lscloud.ioc.facts.loose", callbacks=[_observe_loose], unit="{fact}",
            description="Facts the IOC stores one object each, not yet packed."),
        "load": m.create_histogram(
            "lscloud.ioc.load.duration", unit="s",
            description="Time a start of the IOC took to read its stored facts back.",
            explicit_bucket_boundaries_advisory=[0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]),
        "unread": m.create_counter(
            "lscloud.ioc.events.unread", unit="{event}",
            description="Events the IOC could read no fact from (another shape than their contract): skipped."),
        "late": m.create_counter(
            "lscloud.ioc.readings.late", unit="{event}",
            description="A station's messages older than its tallies keep ids for (TALLY_IDS_KEPT_H): not counted."),
    }


_instrument = Instruments(_create)


def watch(state) -> None:
    """Report the facts ``state`` (a :class:`.live.Live`) holds; the last one watched is reported."""
    _watched[:] = [weakref.ref(state)]
    try:
        _instrument("facts")
        _instrument("loose")
    except Exception:  # noqa: BLE001 - metrics never stop the IOC
        pass


def loaded(seconds: float) -> None:
    try:
        _instrument("load").record(seconds)
    except Exception:  # noqa: BLE001
        pass


def unread(event_type: str) -> None:
    """An event skipped as unreadable (:func:`.live.fact_of`): its type, never its data."""
    try:
        _instrument("unread").add(1, {"cloudevents.event_type": str(event_type)[:200]})
    except Exception:  # noqa: BLE001
        pass



def late(kind: str) -> None:
    """A tallied fact not counted: older than the ids its tallies keep (:meth:`.projection.Projection.tallied`)."""
    try:
        _instrument("late").add(1, {"lscloud.ioc.kind": str(kind)[:60]})
    except Exception:  # noqa: BLE001
        pass
