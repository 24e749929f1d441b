"""The border function's HTTP surface, one blueprint per area: thin routes (parse → domain → respond).

Who may call what is declared on every route (``@allow``); what a caller may see or move is
narrowed further by the domain (:mod:`..scopes`): ownership, the gate in the token's ``unit``,
the ``agency`` claim.
"""

from lscloud.web.housekeeping import outbox_routes

from . import clearance, declarations, devices, gates, public, stats

BLUEPRINTS = (declarations.bp, clearance.bp, gates.bp, public.bp, devices.bp, stats.bp,
              outbox_routes("border/outbox-result.json"))
