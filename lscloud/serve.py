"""Start one function the way Knative's func-python runtime does, or run its seed or migration hook.

    python -m lscloud.serve functions/<name>            # serve (LISTEN_ADDRESS)
    python -m lscloud.serve --seed [--force] functions/<name>
    python -m lscloud.serve --migrate [--after-rollout] [--force] functions/<name>
    python -m lscloud.serve --run-hooks REPORT functions/<name>   # migrate, seed, then serve
    python -m lscloud.serve --wait-for FILE [--run-hooks REPORT] functions/<name>
    python -m lscloud.serve --erase cccd|phone|email|record --operator NAME functions/<name>

Serving imports the folder's ``function`` package and serves its ``new`` the way func-python's
``func_python.http.serve`` does (:mod:`lscloud.function_server`: the same app around the instance,
on uvicorn's C parser instead of hypercorn), in the local cloud as in the cluster's image: the
function binds ``LISTEN_ADDRESS``, answers ``/health/liveness`` and ``/health/readiness`` and gets
``start(cfg)``/``stop()``.

Seeding calls ``function/seed.py``'s ``seed(runtime)`` once per version of the reference
data: a marker object ``_lscloud/seeds/<function>/<fingerprint>.json`` records that it ran.
The fingerprint is ``seed.fingerprint()`` when the hook defines one (it knows where its data
comes from), otherwise a hash of every file in the function package.

Migrating calls ``function/migrate.py``'s ``migrate(runtime)``, which moves what an older
version of the function wrote into today's layout (e.g. indexes re-keyed by pseudonym). It runs
once per version of the hook and pseudonym key (marker ``_lscloud/migrations/<function>/…``),
before the seed and before the function serves; every hook is idempotent, so ``--force`` or a
crash half-way is harmless. Outside the local cloud (the cluster) an operator runs the same
command with the function's own environment (its bucket, credentials and pseudonym key).

Which pseudonym key the data is keyed under is recorded beside it: the migration writes
``_lscloud/pseudonym-key/<function>.json`` (:func:`lscloud.pseudonyms.key_marker`: the key's id and
the ids it was keyed under before, never a key) once it has re-keyed, and it runs whenever that
record names another key than the process's, or none, whatever its own marker says: switching a
key back and forth re-keys back and forth. (Re-keying needs only the new key: every index keyed by
a pseudonym holds the clear value it stands for, :mod:`lscloud.store.rekey`.) A function with a
migration that is served while the record names another key is not ready, and answers 503, until
a migration to its key has run (:class:`KeyGuard`): it would answer from indexes it cannot find
anything in.

``--migrate --after-rollout`` is the migration's second phase, for the cluster: there Knative keeps
replicas of the older revision serving, and writing the older layout (no entries in the new
indexes), while the new revision rolls out, after the first phase ran. So the cluster runs the
same hook again once no pod of an older revision is left (infra/components/hooks.py waits for that
with :mod:`lscloud.rollout`), and it indexes what they wrote meanwhile. Its marker is its own (the
fingerprint plus ``:after``): it runs even when the first phase's marker exists, and once per
version itself. The local cloud needs no second phase: ``lscloud up`` runs the migration before the
function's only process serves, and no older one is left writing.

``--run-hooks REPORT`` is how the local cloud starts a function that has hooks: the migration,
then the seed, each once per version as above, run in the process that then serves, before it
binds its port (so readiness 200 also means its data is in place); their reports are written to
the file REPORT as one JSON object ``{"migrate": ..., "seed": ...}``. A hook that fails is
reported there and the function serves anyway, as when the hooks ran in their own processes.
This spares the local cloud one interpreter (and one import of the function) per hook, and lets
every function's hooks run while the others start.

``--erase KIND`` runs ``function/erase.py``'s ``erase(runtime, subject)`` for the person named by
one identifier of that kind (a CCCD, a phone number, an e-mail address), read from stdin — a prompt
that does not echo on a terminal — never from the command line, and records the request in the
function's bucket (:mod:`lscloud.erasure`); it prints the record (one JSON line: counts, reasons,
pseudonyms, no identifier). ``--erase record`` re-applies a recorded request (its JSON on stdin: what
this printed), after a backup from before it was restored. The process exits 1 when the hook failed
(the record says why). In the cluster an operator runs it as the function's migration Job runs
``--migrate``: from the function's image, with the function's own environment (its bucket,
credentials, pseudonym key), but in a pod attached to their terminal (``kubectl run -i``), typing
the identifier; ``lscloud erase`` does the same for every function of the local cloud.

``--wait-for FILE`` imports the function, then waits until FILE exists before it runs its hooks
and serves: the local cloud starts every function while the object store and the event stream are
still coming up and creates the file once the store has the bucket and NATS the stream, so the
imports (most of a start) overlap the servers' own start, and no hook, publish or first readiness
probe meets a server that is not there yet.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Iterator

SEED_MARKER_PREFIX = "_lscloud/seeds"
WAIT_FOR_TIMEOUT_S = 120.0
MIGRATION_MARKER_PREFIX = "_lscloud/migrations"
KEY_RECHECK_S = 30.0
"""A function whose data is keyed under its key reads the record again after this long (a
migration elsewhere may re-key it meanwhile); one whose data is not, at every readiness probe."""


def load_package(function_dir: Path) -> ModuleType:
    """Import ``<function_dir>/function`` under a module name unique to the function."""
    from lscloud.loading import load_function

    return load_function(Path(function_dir).resolve())


@contextmanager
def importing() -> Iterator[None]:
    """Import with the cyclic garbage collector off, then freeze what was imported.

    An import allocates hundreds of thousands of objects and almost none of them die, so the
    collections it triggers find next to nothing: with the collector off an import takes 7-14% less
    CPU (fewer passes over the growing heap). Frozen, the modules, classes and functions of the
    start are left out of every later collection too (as the fork server does for what it
    preloads). The collector is on again for everything after the import: hooks, ``start()``,
    requests."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


def serve(function_dir: Path) -> None:
    with importing():
        from . import function_server

        module = load_package(function_dir)
    new = getattr(module, "new", None)
    if new is None or not callable(new):
        raise SystemExit(f"{function_dir}/function/__init__.py must export new()")
    function_dir = Path(function_dir).resolve()
    if (function_dir / "function" / "migrate.py").is_file():
        # only a migration re-keys: a function without one keys nothing it could move
        made, name = new, function_dir.name
        new = lambda: KeyGuard(made(), name)  # noqa: E731
    function_server.serve(new)


def recorded_key(objects, bucket: str, function: str) -> dict | None:
    """The record of which pseudonym key ``function``'s data in ``bucket`` is keyed under
    (:func:`lscloud.pseudonyms.key_record`), or None when there is none (or it is unreadable)."""
    from lscloud import pseudonyms
    from lscloud.store.errors import DoesNotExist

    try:
        record = json.loads(objects.get(bucket, pseudonyms.key_marker(function)).body)
    except DoesNotExist:
        return None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def key_mismatch(function: str, recorded: str, current: str) -> str:
    """What an operator reads when ``function``'s data is keyed under another key than its own:
    both key ids (never a key), and what to run."""
    return (f"{function}: its data is keyed under pseudonym key id {recorded}, this process has key id "
            f"{current}: not ready until a migration to key id {current} has run (local: `lscloud migrate "
            f"--force {function}`; cluster: its migration Job, or `python -m lscloud.serve --migrate "
            f"/app/functions/{function}` with the function's environment) / dữ liệu của {function} được "
            f"khoá theo khoá bí danh {recorded}, tiến trình này dùng khoá {current}: chưa sẵn sàng cho tới "
            f"khi chạy migration sang khoá {current}")


class KeyGuard:
    """A function instance (func-python's: ``handle``, and ``start``/``stop``/``alive``/``ready`` if it
    has them) that is not ready, and answers 503, while its bucket records that its data is keyed
    under another pseudonym key than the process's (see the module docstring). Nothing recorded
    (a bucket no migration has written to yet) is no mismatch: the migration records it."""

    def __init__(self, instance, function: str):
        self._f = instance
        self.function = function
        self._mismatch: str | None = None
        self._checked_at: float | None = None
        self._logged: set[tuple[str, str]] = set()
        self._own = None   # a runtime of its own, when the function installed none

    def __getattr__(self, name: str):
        # stop, alive, ...: as the instance has them (FunctionApp asks with hasattr)
        return getattr(self._f, name)

    def start(self, cfg) -> None:
        if hasattr(self._f, "start"):
            self._f.start(cfg)
        self._verify()

    def stop(self) -> None:
        if hasattr(self._f, "stop"):
            self._f.stop()
        own, self._own = self._own, None
        if own is not None:
            own.close()

    def ready(self):
        mismatch = self._verify()
        if mismatch:
            return False, mismatch
        inner = getattr(self._f, "ready", None)
        return inner() if callable(inner) else True

    async def handle(self, scope, receive, send) -> None:
        if self._mismatch is None:
            await self._f.handle(scope, receive, send)
            return
        from lscloud.problems import MEDIA_TYPE, Problem

        body = Problem(503, type="pseudonym-key-mismatch",
                       detail="This service's data is keyed under another pseudonym key until its migration "
                              "has run; try again later.",
                       detail_vi="Dữ liệu của dịch vụ đang theo một khoá bí danh khác cho tới khi chạy migration; "
                                 "vui lòng thử lại sau.").body()
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                                (b"retry-after", b"30")]})
        await send({"type": "http.response.body", "body": body})

    def _verify(self) -> str | None:
        """The mismatch, read again unless the data was found keyed under this key lately; a store
        that does not answer keeps the last verdict (readiness checks the store itself)."""
        now = time.monotonic()
        if self._mismatch is None and self._checked_at is not None and now - self._checked_at < KEY_RECHECK_S:
            return None
        from lscloud import config, pseudonyms, runtime

        try:
            rt = runtime.installed()
            if rt is None:
                self._own = self._own or runtime.Runtime(config.load())
                rt = self._own
            current = pseudonyms.key_id_of(rt.settings.pseudonym_key)
            recorded = (recorded_key(rt.objects, rt.settings.bucket, self.function) or {}).get("key_id")
        except Exception:  # noqa: BLE001 - the store's own readiness says it is down
            return self._mismatch
        self._checked_at = now
        if not recorded or recorded == current:
            self._mismatch = None
            return None
        self._mismatch = key_mismatch(self.function, recorded, current)
        if (recorded, current) not in self._logged:
            self._logged.add((recorded, current))
            import logging

            logging.getLogger("lscloud.serve").error("%s", self._mismatch)
        return self._mismatch


def wait_for(path: Path, timeout_s: float = WAIT_FOR_TIMEOUT_S) -> bool:
    """Wait until ``path`` exists (polled every 20 ms); False if it did not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not Path(path).exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


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
    return _run_once(Path(function_dir), "seed", SEED_MARKER_PREFIX, force=force)


AFTER_ROLLOUT = "after"
"""The suffix of the after-rollout phase's fingerprint (its marker is not the first phase's)."""


def migrate(function_dir: Path, *, force: bool = False, after_rollout: bool = False) -> dict:
    """Run the function's migration hook unless this version of it already ran with this pseudonym
    key and the bucket records its data keyed under this key (it runs when the record names another
    key, or none); ``after_rollout``: its second phase, once per version too, whether or not the
    first ran. Either records the key once the hook has run."""
    return _run_once(Path(function_dir), "migrate", MIGRATION_MARKER_PREFIX, force=force,
                     phase=AFTER_ROLLOUT if after_rollout else "")


def _fingerprint(hook: ModuleType, kind: str, package_dir: Path) -> str:
    if callable(getattr(hook, "fingerprint", None)):
        return str(hook.fingerprint())
    if kind == "migrate":
        from lscloud import pseudonyms

        # the hook's own code and the key it keys with: a rotated key re-keys everything again
        return hashlib.sha256(Path(hook.__file__).read_bytes()).hexdigest() + ":" + pseudonyms.key_id()
    return package_fingerprint(package_dir)


def _run_once(function_dir: Path, kind: str, marker_prefix: str, *, force: bool, phase: str = "") -> dict:
    """Run ``function/<kind>.py``'s ``<kind>(runtime)`` once per fingerprint (and ``phase``), recorded
    by a marker object."""
    from lscloud import config, pseudonyms, runtime

    function_dir = function_dir.resolve()
    name = function_dir.name
    module = load_package(function_dir)
    hook = importlib.import_module(f"{module.__name__}.{kind}")
    if not callable(getattr(hook, kind, None)):
        raise SystemExit(f"{function_dir}/function/{kind}.py must define {kind}(runtime)")
    done = {"seed": "seeded", "migrate": "migrated"}[kind]
    rt = runtime.install(runtime.Runtime(config.load()))
    from lscloud.store.errors import DoesNotExist

    try:
        fingerprint = _fingerprint(hook, kind, function_dir / "function")
        if phase:
            fingerprint += ":" + phase
        bucket = rt.settings.bucket
        key = f"{marker_prefix}/{name}/{hashlib.sha256(fingerprint.encode()).hexdigest()[:32]}.json"
        recorded, keyed_under = None, None
        if kind == "migrate":
            # the hook's own marker says this version ran with this key once; the key record says what
            # the data is keyed under now (another key may have re-keyed it since), and nothing
            # recorded (data from before the record existed) could be keyed under any key
            recorded = recorded_key(rt.objects, bucket, name)
            keyed_under = (recorded or {}).get("key_id")
        if not force and (kind != "migrate" or keyed_under == pseudonyms.key_id()):
            try:
                rt.objects.head(bucket, key)
                return {"function": name, done: False, "reason": "already done", "marker": key,
                        **({"phase": phase} if phase else {})}
            except DoesNotExist:
                pass
        started = time.monotonic()
        result = getattr(hook, kind)(rt)
        took_ms = round((time.monotonic() - started) * 1000)
        record = {"function": name, "fingerprint": fingerprint, **({"phase": phase} if phase else {}),
                  f"{done}_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "result": result if isinstance(result, (int, float, str, dict, list, type(None))) else repr(result)}
        rt.objects.put(bucket, key, json.dumps(record, default=str).encode())
        extra = {}
        if kind == "migrate":
            # only now: a hook that failed leaves the record naming the key the data is still keyed under
            rt.objects.put(bucket, pseudonyms.key_marker(name), json.dumps(
                pseudonyms.key_record(name, recorded, at=record["migrated_at"])).encode())
            extra = {"key_id": pseudonyms.key_id(),
                     **({"rekeyed_from": keyed_under} if keyed_under and keyed_under != pseudonyms.key_id() else {})}
        return {"function": name, done: True, "marker": key, "took_ms": took_ms, "result": record["result"],
                **({"phase": phase} if phase else {}), **extra}
    finally:
        runtime.uninstall()


def erase(function_dir: Path, kind: str, *, operator: str, stdin=None) -> dict:
    """Run the function's erasure hook for the person named by one identifier of ``kind`` read from
    ``stdin`` (``record``: re-apply the recorded request on ``stdin``), record the request in the
    function's bucket and return the record (:func:`lscloud.erasure.run`)."""
    from lscloud import config, erasure, runtime

    function_dir = Path(function_dir).resolve()
    hooks, _ = erasure.load_hooks({function_dir.name: function_dir})
    if not hooks:
        raise SystemExit(f"{function_dir}/function/erase.py must define erase(runtime, subject)")
    stream = stdin if stdin is not None else sys.stdin
    try:
        if kind == "record":
            record = json.loads(stream.read())
            subject, reapplies = erasure.Subject.from_record(record), record.get("request")
        else:
            subject, reapplies = erasure.Subject(kind, erasure.read_value("-", stream, prompt=f"{kind}: ")), None
    except (erasure.InvalidSubject, ValueError, AttributeError) as exc:
        raise SystemExit(f"lscloud.serve --erase: {exc}") from None
    rt = runtime.install(runtime.Runtime(config.load()))
    try:
        return erasure.run(rt, subject, hooks, operator=operator, reapplies=reapplies)
    finally:
        runtime.uninstall()


def run_hooks(function_dir: Path, report_path: Path) -> dict:
    """Run the function's migration then its seed hook (each only if the package has one, each
    once per version), write their reports to ``report_path`` (atomically) and return them.
    A failing hook is reported as ``{"function", "error"}``; the next one still runs."""
    function_dir = Path(function_dir).resolve()
    package = function_dir / "function"
    report: dict = {}
    for kind, run in (("migrate", migrate), ("seed", seed)):
        if not (package / f"{kind}.py").is_file():
            continue
        try:
            report[kind] = run(function_dir)
        except Exception as exc:  # noqa: BLE001 - reported; the function still serves
            import logging

            logging.getLogger("lscloud.serve").exception("%s hook of %s failed", kind, function_dir.name)
            report[kind] = {"function": function_dir.name, "error": f"{exc.__class__.__name__}: {exc}"[:500]}
    report_path = Path(report_path)
    tmp = report_path.with_name(report_path.name + ".tmp")
    tmp.write_text(json.dumps(report, default=str))
    tmp.replace(report_path)
    return report


def main(argv: list[str] | None = None) -> int:
    from lscloud import loops, redaction

    # before anything can log or fail: a seed's or a function's traceback must not name a citizen
    redaction.install_log_redaction()
    # every event loop this process makes from now on is uvloop's: the bus's loop thread, whether a
    # hook or the function starts it first (the server's own loop is made by loops.loop_factory)
    loops.install()
    parser = argparse.ArgumentParser(prog="python -m lscloud.serve",
                                     description="Serve one function like Knative's func-python, "
                                                 "or seed or migrate its data.")
    parser.add_argument("function_dir", type=Path, help="the function's folder (holds func.yaml and function/)")
    hooks = parser.add_mutually_exclusive_group()
    hooks.add_argument("--seed", action="store_true", help="run function/seed.py's seed(runtime) and exit")
    hooks.add_argument("--migrate", action="store_true", help="run function/migrate.py's migrate(runtime) and exit")
    hooks.add_argument("--run-hooks", metavar="REPORT", type=Path,
                       help="run the migration and seed hooks (once per version), write their reports to REPORT "
                            "(JSON), then serve")
    hooks.add_argument("--erase", metavar="KIND", choices=("cccd", "phone", "email", "record"),
                       help="run function/erase.py's erase(runtime, subject) for the person named by one identifier "
                            "of KIND (cccd, phone, email) read from stdin, record the request and print the record "
                            "(JSON); KIND record: re-apply a recorded request read from stdin")
    parser.add_argument("--operator", metavar="NAME", help="with --erase: who makes the request (recorded)")
    parser.add_argument("--force", action="store_true", help="with --seed / --migrate: run even if it already ran")
    parser.add_argument("--after-rollout", action="store_true",
                        help="with --migrate: the second phase, once no replica of an older revision serves "
                             "(its own marker: runs even when the first phase already ran)")
    parser.add_argument("--wait-for", metavar="FILE", type=Path,
                        help="import the function, then wait until FILE exists before running hooks and serving")
    args = parser.parse_args(argv)
    if args.after_rollout and not args.migrate:
        parser.error("--after-rollout goes with --migrate")
    if args.wait_for is not None:
        with importing():
            load_package(args.function_dir)  # the import overlaps what is waited for
        print(f"lscloud.serve: imported; waiting for {args.wait_for}", file=sys.stderr, flush=True)
        if not wait_for(args.wait_for):
            import logging

            # as before the wait existed: the hooks report what fails, readiness says what is missing
            logging.getLogger("lscloud.serve").warning("%s did not appear within %.0fs; starting anyway",
                                                       args.wait_for, WAIT_FOR_TIMEOUT_S)
    if args.erase:
        if not args.operator:
            parser.error("--erase needs --operator NAME: the request's record says who made it")
        record = erase(args.function_dir, args.erase, operator=args.operator)
        print(json.dumps(record, ensure_ascii=False, default=str), flush=True)
        return 1 if record["failed"] else 0
    if args.seed or args.migrate:
        # one JSON line on stdout: the supervisor reads it
        result = (seed(args.function_dir, force=args.force) if args.seed
                  else migrate(args.function_dir, force=args.force, after_rollout=args.after_rollout))
        print(json.dumps(result, default=str), flush=True)
        return 0
    if args.run_hooks is not None:
        run_hooks(args.function_dir, args.run_hooks)
    serve(args.function_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
