"""Run a function's own command-line tool against the local cloud, with the function's environment.

``lscloud bank-kit`` is the soft ATM's partner-bank kit: it reads the bank's registration and keys
through the soft ATM's own code and store, so it runs as that function would (same settings, same
bucket, same key-encryption key) — in a child process, like a seed hook (:mod:`lscloud.serve`).
The tool is ``function/<tool>.py`` with ``main(runtime, argv) -> exit code``.

    python -m lscloud.local.tools <function dir> <tool> [args...]
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2:
        print("usage: python -m lscloud.local.tools FUNCTION_DIR TOOL [ARGS...]", file=sys.stderr)
        return 2
    function_dir, tool, rest = Path(argv[0]).resolve(), argv[1], argv[2:]
    from lscloud import config, redaction, runtime
    from lscloud.loading import load_function

    redaction.install_log_redaction()
    package = load_function(function_dir)
    module = importlib.import_module(f"{package.__name__}.{tool}")
    rt = runtime.install(runtime.Runtime(config.load()))
    try:
        return int(module.main(rt, rest) or 0)
    finally:
        runtime.uninstall()


if __name__ == "__main__":
    sys.exit(main())
