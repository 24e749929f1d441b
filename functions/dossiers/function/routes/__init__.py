"""The dossiers' HTTP surface, one blueprint per area: files, submission, reading, processing
(the workflow's moves) and figures (stats, the calendar, housekeeping). Views parse, call the
domain and answer; who may call each is declared on it (``@allow``)."""

from lscloud.web.housekeeping import outbox_routes

from . import figures, files, processing, reading, submission

BLUEPRINTS = (files.bp, submission.bp, reading.bp, processing.bp, figures.bp,
              outbox_routes("dossiers/outbox-result.json"))
