"""Start one function the way Knative's func-python runtime does, or run its seed hook.

    python -m lscloud.local.run_function functions/<name>            # serve (LISTEN_ADDRESS)
    python -m lscloud.local.run_function --seed [--force] functions/<name>

Serving imports the folder's ``function`` package and hands its ``new`` to
``func_python.http.serve``, the same entry the func-python container image uses, so the
function binds ``LISTEN_ADDRESS``, answers ``/health/liveness`` and ``/health/readiness`` and
gets ``start(cfg)``/``stop()`` exactly as in the cluster.

Seeding calls ``function/seed.py``'s ``seed(runtime)`` once per version of the reference
data: a marker object ``_lscloud/seeds/<function>/<fingerprint>.json`` records that it ran.
The fingerprint is ``seed.fingerprint()`` when the hook defines one (it knows where its data
comes from), otherwise a hash of every file in the function package.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
import time
from pathlib import Path
from types import ModuleType

SEED_MARKER_PREFIX = "_lscloud/seeds"


def load_package(function_dir: Path) -> ModuleType:
    """Import ``<function_dir>/function`` under a module name unique to the function."""
    from lscloud.knative import load_function

    return load_function(Path(function_dir).resolve())


def serve(function_dir: Path) -> None:
    import func_python.http

    module = load_package(function_dir)
    new = getattr(module, "new", None)
    if new is None or not callable(new):
        raise SystemExit(f"{function_dir}/function/__init__.py must export new()")
    # func_python.http.serve dispatches on the callable's __name__ ('new' or 'handle')
    func_python.http.serve(new)


def package_fingerprint(package_dir: Path) -> str:
    """sha256 over the package's files (path and content), ignoring bytecode caches."""
    h = hashlib.sha256()
    for p in sorted(package_dir.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
            h.update(str(p.relative_to(package_dir)).encode() + b"\0")
            h.update(p.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def seed(function_dir: Path, *, force: bool = False) -> dict:
    """Run the function's seed hook unless this version of its data was already loaded."""
    from lscloud import config, runtime

    function_dir = Path(function_dir).resolve()
    name = function_dir.name
    module = load_package(function_dir)
    hook = importlib.import_module(module.__name__ + ".seed")
    if not callable(getattr(hook, "seed", None)):
        raise SystemExit(f"{function_dir}/function/seed.py must define seed(runtime)")
    fingerprint = str(hook.fingerprint()) if callable(getattr(hook, "fingerprint", None)) \
        else package_fingerprint(function_dir / "function")
    rt = runtime.install(runtime.Runtime(config.load()))
    bucket = rt.settings.bucket
    key = f"{SEED_MARKER_PREFIX}/{name}/{hashlib.sha256(fingerprint.encode()).hexdigest()[:32]}.json"
    from lscloud.store.errors import DoesNotExist

    try:
        if not force:
            try:
                rt.objects.head(bucket, key)
                return {"function": name, "seeded": False, "reason": "already seeded", "marker": key}
            except DoesNotExist:
                pass
        started = time.monotonic()
        result = hook.seed(rt)
        took_ms = round((time.monotonic() - started) * 1000)
        record = {"function": name, "fingerprint": fingerprint, "seeded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "result": result if isinstance(result, (int, float, str, dict, list, type(None))) else repr(result)}
        rt.objects.put(bucket, key, json.dumps(record, default=str).encode())
        return {"function": name, "seeded": True, "marker": key, "took_ms": took_ms, "result": record["result"]}
    finally:
        runtime.uninstall()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lscloud.local.run_function",
                                     description="Serve one function like Knative's func-python, or seed its data.")
    parser.add_argument("function_dir", type=Path, help="the function's folder (holds func.yaml and function/)")
    parser.add_argument("--seed", action="store_true", help="run function/seed.py's seed(runtime) and exit")
    parser.add_argument("--force", action="store_true", help="with --seed: seed even if this data was loaded")
    args = parser.parse_args(argv)
    if args.seed:
        # one JSON line on stdout: the supervisor reads it
        print(json.dumps(seed(args.function_dir, force=args.force), default=str), flush=True)
        return 0
    serve(args.function_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
