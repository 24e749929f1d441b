"""The OpenTelemetry SDK, imported without psutil.

The SDK's resources module imports psutil when it is installed, for one attribute of its process
resource detector (``process.owner``), which the runtime does not use (a function's resource is its
``service.name``, :mod:`lscloud.telemetry`). psutil is no dependency of the cluster's images (only of
the local cloud's tools, ``lscloud[local]``), so there the SDK never loads it; where it is installed
(a developer's machine, CI) it cost every function's cold start about 13 ms that the cluster never
pays. Every lscloud module that imports the SDK imports this module first
(``tests/unit/test_lean_imports.py`` holds them to it), so a function starts here as it does there.
"""

from __future__ import annotations

from .lean_imports import import_without

import_without("opentelemetry.sdk.resources", "psutil")
