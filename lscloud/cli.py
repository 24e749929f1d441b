"""The `lscloud` command: run the local cloud and look inside it.

    lscloud up [--port 8080] [--state-dir .lscloud] [--functions-dir functions] ...
    lscloud down [--timeout 30]  stop the `lscloud up` of --state-dir (run from another terminal or a script)
    lscloud status | token --role R | seed | migrate | dlq | events tail | traces
    lscloud bench NAME           one benchmark against its same-run baseline (`lscloud bench --help` lists them)
    lscloud fuzz [--base-url URL | --direct] [--cases 1000] [--function NAME]
    lscloud docs [--check]      the README's "who may call" tables from functions/*/access.yaml
    lscloud backup DEST | restore SRC   the local cloud's objects, streams and keys in a folder, and back
    lscloud erase --kind phone --value - [--function NAME]   a person's data erased on their request
    lscloud bank-kit check --bank CODE   the checks a partner bank must pass before go-live (soft ATM)

Exit codes: 0 done; 1 failed (message on stderr; `fuzz`: a 5xx or a 4xx that is not problem+json); 2 bad
usage; 3 `status` found the cloud running but not healthy. `down`: 0 stopped; 1 nothing was running; 2 something
could not be stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import config
from .local import cloud as local_cloud

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNHEALTHY = 0, 1, 2, 3


class CliError(Exception):
    """A command cannot do its job; printed as ``lscloud: <message>`` with exit code 1."""


def _state_dir(args) -> Path:
    return Path(args.state_dir).resolve()


def running_cloud(state_dir: Path) -> dict:
    """``cloud.json`` of the live `lscloud up` owning ``state_dir`` (CliError if none)."""
    from .local.cloud import NotRunning, running_cloud as read

    try:
        return read(state_dir)
    except NotRunning as exc:
        raise CliError(str(exc)) from None


def default_dirs() -> list[str]:
    """``functions`` and, when present, ``peers`` (test peers such as the simulated bank: started by
    `lscloud up`, never deployed by infra)."""
    return ["functions"] + (["peers"] if Path("peers").is_dir() else [])


# -- commands -------------------------------------------------------------------------------------

def cmd_up(args) -> int:
    from .local.supervisor import UpError, UpOptions, up

    if bool(args.s3_endpoint) != bool(args.s3_access_key and args.s3_secret_key) and args.s3_endpoint:
        raise CliError("--s3-endpoint needs --s3-access-key and --s3-secret-key")
    options = UpOptions(state_dir=_state_dir(args), functions_dirs=[Path(d) for d in (args.functions_dir or default_dirs())],
                        host=args.host, port=args.port, s3_endpoint=args.s3_endpoint, s3_access_key=args.s3_access_key,
                        s3_secret_key=args.s3_secret_key, nats_url=args.nats_url, only=args.only or None)
    try:
        return up(options)
    except UpError as exc:
        raise CliError(str(exc)) from None


def cmd_status(args) -> int:
    import httpx

    state_dir = _state_dir(args)
    try:
        cloud = local_cloud.running_cloud(state_dir)
    except local_cloud.SupervisorDead as exc:
        # something answers, so "nothing runs" would be a lie: running, not healthy
        print(f"lscloud: {exc}", file=sys.stderr)
        return EXIT_UNHEALTHY
    except local_cloud.NotRunning as exc:
        raise CliError(str(exc)) from None
    gw = cloud["gateway"]["url"]
    if cloud.get("state") != "ready" or not gw:
        print(f"lscloud up (pid {cloud['pid']}) is {cloud.get('state')}; state dir {state_dir}")
        return EXIT_UNHEALTHY
    try:
        listing = httpx.get(gw + "/", timeout=5, trust_env=False).json()
    except (httpx.HTTPError, ValueError) as exc:
        print(f"gateway {gw} does not answer: {exc}", file=sys.stderr)
        return EXIT_UNHEALTHY
    health = {f["name"]: f for f in listing.get("functions", [])}
    print(f"lscloud up (pid {cloud['pid']}) — gateway {gw}/  state dir {state_dir}")
    print(f"NATS {cloud['nats']['url']}   S3 {cloud['s3']['endpoint']} (bucket {cloud['s3']['bucket']})")
    width = max([len(n) for n in cloud["functions"]] + [8])
    print(f"  {'function'.ljust(width)}  {'health':9}  {'state':10}  {'pid':>7}  restarts  url")
    ok = True
    for name, f in sorted(cloud["functions"].items()):
        h = health.get(name, {})
        healthy = bool(h.get("healthy"))
        ok &= healthy
        print(f"  {name.ljust(width)}  {('ready' if healthy else 'NOT READY'):9}  {h.get('state', f['state']):10}  "
              f"{f['pid'] or '-':>7}  {f['restarts']:>8}  {f['url']}")
    return EXIT_OK if ok else EXIT_UNHEALTHY


def cmd_down(args) -> int:
    from .local import down

    try:
        return down.down(_state_dir(args), args.timeout)
    except down.NothingRunning as exc:
        raise CliError(str(exc)) from None


def cmd_token(args) -> int:
    from .auth import dev_keys, issue_token

    private_pem, _ = dev_keys(_state_dir(args))
    from . import config

    s = config.load()
    if not 1 <= args.ttl <= s.jwt_max_lifetime_s:
        raise CliError(f"--ttl must be 1 to {s.jwt_max_lifetime_s} seconds: functions refuse tokens that live longer "
                       "(LSCLOUD_JWT_MAX_LIFETIME_S)")
    print(issue_token(private_pem, sub=args.sub or f"dev-{args.role}", role=args.role, agency=args.agency,
                      unit=args.unit, ttl_s=args.ttl, issuer=s.jwt_issuer, audience=s.jwt_audience))
    return EXIT_OK


def cmd_seed(args) -> int:
    return _run_hooks(args, "seed")


def cmd_migrate(args) -> int:
    return _run_hooks(args, "migrate")


def _run_hooks(args, kind: str) -> int:
    """Run every chosen function's seed or migration hook (forced for seeds, once for migrations)."""
    from . import manifest as manifests
    from .local.supervisor import function_env, run_migration, run_seed

    run = run_seed if kind == "seed" else run_migration
    force = kind == "seed" or bool(getattr(args, "force", False))
    chosen = set(args.functions or [])
    if getattr(args, "from_env", False):
        # any store (the cluster): the environment holds the function's bucket, credentials and pseudonym key
        if not chosen:
            raise CliError("--from-env needs the functions to migrate, e.g. `lscloud migrate --from-env border`")
        found = {m.name: (m, {**config.environ(), "K_SERVICE": m.name})
                 for m in manifests.discover([Path(d) for d in default_dirs()]) if m.name in chosen}
    else:
        cloud = running_cloud(_state_dir(args))
        from .auth import dev_keys

        settings = local_cloud.cloud_settings(cloud)
        settings = settings.replace(jwt_public_key=dev_keys(settings.state_dir)[1])
        found = {}
        for name, f in cloud["functions"].items():
            if not chosen or name in chosen:
                m = manifests.load(f["dir"])
                found[name] = (m, function_env(m, settings, f["port"]))
    unknown = chosen - set(found)
    if unknown:
        raise CliError(f"no {'' if getattr(args, 'from_env', False) else 'running '}function named "
                       f"{', '.join(sorted(unknown))}")
    failed = ran = 0
    for name, (m, env) in sorted(found.items()):
        if not (m.seed_module if kind == "seed" else m.migrate_module):
            if chosen:
                print(f"{name}: no function/{kind}.py")
            continue
        ran += 1
        result = run(m, env, force=force)
        if "error" in result:
            failed += 1
            print(f"✗ {name}: {result['error']}", file=sys.stderr)
        elif kind == "seed":
            print(f"✓ {name}: seeded in {result.get('took_ms')} ms: "
                  f"{json.dumps(result.get('result'), ensure_ascii=False, default=str)}")
        elif result.get("migrated"):
            print(f"✓ {name}: migrated in {result.get('took_ms')} ms: "
                  f"{json.dumps(result.get('result'), ensure_ascii=False, default=str)}")
        else:
            print(f"✓ {name}: already migrated (--force runs it again)")
    if not ran:
        print(f"no function has a {kind} hook (function/{kind}.py)")
    return EXIT_FAIL if failed else EXIT_OK


def cmd_dlq(args) -> int:
    from .delivery import read_dlq

    settings = local_cloud.cloud_settings(running_cloud(_state_dir(args)))
    entries = read_dlq(settings, args.n)
    for entry in entries:
        print(json.dumps(entry, ensure_ascii=False, default=str))
    if not entries:
        print(f"dead letter stream {settings.stream}_DLQ is empty", file=sys.stderr)
    return EXIT_OK


def cmd_events_tail(args) -> int:
    from .delivery import tail

    settings = local_cloud.cloud_settings(running_cloud(_state_dir(args)))
    entries = tail(settings, args.n)
    for entry in entries:
        seq, event = entry["seq"], entry["event"]
        if args.json or not isinstance(event, dict):
            print(json.dumps(entry, ensure_ascii=False, default=str))
            continue
        data = json.dumps(event.get("data"), ensure_ascii=False, default=str)
        print(f"{seq:>6}  {event.get('time', '?')}  {event.get('type', '?')}  id={event.get('id')}  "
              f"source={event.get('source')}{'  subject=' + str(event['subject']) if event.get('subject') else ''}\n"
              f"        {data if len(data) <= 160 else data[:159] + '…'}")
    if not entries:
        print(f"no events in stream {settings.stream}", file=sys.stderr)
    return EXIT_OK


def cmd_traces(args) -> int:
    from .telemetry import format_trace_tree, iter_trace_file, newest_traces, read_trace_file

    if not args.where and (args.skip or args.follow_events):
        raise CliError("--skip and --follow-events go with --where ROUTE")
    if args.n < 1:
        raise CliError("-n must be at least 1")
    # the span log and its rotated files may hold a gigabyte: never all of it in memory
    path = _state_dir(args) / "traces.jsonl"
    if args.where:
        from .local.trace_profile import format_profile, profile

        read = [0]

        def counted():
            for span in iter_trace_file(path, trace_id=args.trace_id):
                read[0] += 1
                yield span

        found = profile(counted(), args.where, skip=args.skip, follow_events=args.follow_events)
        if not read[0]:
            print(f"no spans in {path}", file=sys.stderr)
            return EXIT_OK
        print(format_profile(found))
        return EXIT_OK
    # one trace: the whole log is streamed for it; else the last N traces by the start of their
    # first span, read from the log's end
    spans = read_trace_file(path, trace_id=args.trace_id) if args.trace_id else newest_traces(path, args.n)
    if not spans:
        print(f"no spans in {path}", file=sys.stderr)
        return EXIT_OK
    print(format_trace_tree(spans))
    return EXIT_OK


def cmd_bench(args) -> int:
    from .local.bench_load import BenchError
    from .local.benches import BY_NAME, arguments

    bench = BY_NAME[args.bench_command]
    try:
        return bench.function()(**arguments(bench, args, lambda: _state_dir(args)))
    except BenchError as exc:
        raise CliError(str(exc)) from None


def fuzz_targets(args) -> list:
    """The functions to fuzz: the gateway's list (or the running cloud's own ports with ``--direct``),
    without test peers such as the simulated bank."""
    import httpx

    from .fuzz import Target

    state_dir = _state_dir(args)
    cloud = None
    try:
        cloud = running_cloud(state_dir)
    except CliError:
        if args.direct:
            raise
    if args.direct:
        found = {name: f["direct_url"].rstrip("/") for name, f in cloud["functions"].items()}
    else:
        base = args.base_url.rstrip("/")
        try:
            listing = httpx.get(base + "/", headers={"Accept": "application/json"}, timeout=10, trust_env=False).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CliError(f"no gateway answers at {base}/ ({exc.__class__.__name__}); start one with `lscloud up`") from None
        found = {f["name"]: base + "/" + f["url"].strip("/") for f in listing.get("functions", [])}
    peers = {name for name, f in ((cloud or {}).get("functions") or {}).items() if Path(f.get("dir", "")).parent.name == "peers"}
    chosen = args.function or sorted(set(found) - peers)
    unknown = [n for n in chosen if n not in found]
    if unknown:
        raise CliError(f"no function named {', '.join(unknown)} (running: {', '.join(sorted(found))})")
    return [Target(name, found[name]) for name in chosen]


def cmd_fuzz(args) -> int:
    from . import config
    from .auth import dev_key_file, dev_keys, issue_token
    from .fuzz import PHASES, ROLE_CLAIMS, FuzzError, format_results, fuzz

    state_dir = _state_dir(args)
    if not dev_key_file(state_dir).exists():
        raise CliError(f"no dev key under {state_dir}: give the --state-dir of the running `lscloud up`")
    private_pem, _ = dev_keys(state_dir)
    s = config.load()

    def mint(role: str) -> str:
        claims = ROLE_CLAIMS.get(role, {})
        return issue_token(private_pem, sub=claims.get("sub", f"fuzz-{role}"), role=role, agency=claims.get("agency"),
                           unit=claims.get("unit"), ttl_s=args.token_ttl, issuer=s.jwt_issuer, audience=s.jwt_audience)

    if args.cases < 1:
        raise CliError("--cases must be at least 1")
    unknown = set(args.phases.split(",")) - set(PHASES)
    if unknown:
        raise CliError(f"unknown phase {', '.join(sorted(unknown))} (phases: {', '.join(PHASES)})")
    targets = fuzz_targets(args)
    report_dir = Path(args.report_dir).resolve() if args.report_dir else state_dir / "fuzz"
    try:
        results = fuzz(targets, cases=args.cases, mint=mint, report_dir=report_dir, seed=args.seed,
                       workers=args.workers, phases=args.phases.split(","),
                       progress=lambda line: print(line, flush=True))
    except FuzzError as exc:
        raise CliError(str(exc)) from None
    print(format_results(results))
    print(f"reports: {report_dir}")
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAIL


# -- parser ---------------------------------------------------------------------------------------

def cmd_docs(args) -> int:
    """Write the README's "who may call" tables from each function's access.yaml (``--check``: only
    say which are out of date, exit 1 if any)."""
    from . import rolematrix

    root = Path(args.root).resolve()
    try:
        changed = rolematrix.sync_documents(root, write=not args.check)
    except rolematrix.MatrixError as exc:
        raise CliError(str(exc)) from None
    for path in changed:
        print(f"{'out of date' if args.check else 'updated'}: {path.relative_to(root)}")
    if args.check and changed:
        print("lscloud: run `lscloud docs` to regenerate the role-matrix tables", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def cmd_store_check(args) -> int:
    """Whether the object store keeps the conditional-request promises the runtime rests on
    (:mod:`lscloud.store.conformance`); exit 1 when one the runtime needs is broken."""
    from .store.conformance import check, format_findings
    from .store.objects import ObjectStore
    from .store.s3http import Unreachable

    if args.from_env:
        # the cluster: a function's own environment (its endpoint, credentials, bucket, CA, LSCLOUD_S3_CONDITIONAL_DELETE)
        try:
            settings = config.load()
        except config.ConfigError as exc:
            raise CliError(str(exc)) from None
    else:
        settings = local_cloud.cloud_settings(running_cloud(_state_dir(args)))
    if args.writers < 2:
        raise CliError("--writers must be at least 2 (a race needs two)")
    store = ObjectStore.from_settings(settings)
    try:
        findings = check(store.http, settings.bucket, conditional_delete=settings.s3_conditional_delete,
                         writers=args.writers)
    except Unreachable as exc:
        raise CliError(f"the object store at {settings.s3_endpoint} did not answer: {exc}") from None
    print(f"object store {settings.s3_endpoint}, bucket {settings.bucket}")
    print(format_findings(findings))
    broken = [f for f in findings if f.required and not f.kept]
    print(f"{len(broken)} promise(s) the runtime needs are broken: do not run functions on this store"
          if broken else "the store keeps every promise the runtime needs")
    return EXIT_FAIL if broken else EXIT_OK


def cmd_bank_kit(args) -> int:
    """Run the soft ATM's partner-bank kit (``function/bankkit.py``) with the soft ATM's environment."""
    import subprocess

    from . import manifest as manifests
    from .auth import dev_keys
    from .local.supervisor import function_env

    cloud = running_cloud(_state_dir(args))
    f = cloud["functions"].get("softatm")
    if f is None:
        raise CliError("the soft ATM (softatm) does not run in this cloud")
    settings = local_cloud.cloud_settings(cloud)
    # functions reach each other through the gateway, as the running ones do
    settings = settings.replace(jwt_public_key=dev_keys(settings.state_dir)[1],
                                peer_url_template=cloud["gateway"]["url"] + "/{name}")
    m = manifests.load(f["dir"])
    argv = [sys.executable, "-m", "lscloud.local.tools", str(m.root), "bankkit", "--bank", args.bank,
            "--wait", str(args.wait)]
    argv += ["--account", args.account] if args.account else []
    argv += ["--reject-account", args.reject_account] if args.reject_account else []
    return subprocess.run(argv, env=function_env(m, settings, f["port"]), cwd=str(m.root),
                          stdin=subprocess.DEVNULL).returncode


def cmd_erase(args) -> int:
    """Run every chosen function's erasure hook for one person (:mod:`lscloud.erasure`), record the
    request and print the record: what was erased, what was kept and why, never the identifier."""
    import getpass

    from . import erasure, manifest as manifests, redaction, runtime

    redaction.install_log_redaction()   # a hook's failure logged must not name the person
    reapplies = None
    if args.reapply:
        if args.kind or args.value:
            raise CliError("--reapply takes the request from its record: no --kind or --value")
        try:
            record = json.loads(Path(args.reapply).read_text(encoding="utf-8"))
            subject, reapplies = erasure.Subject.from_record(record), record["request"]
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise CliError(f"cannot read the record {args.reapply}: {exc}") from None
    else:
        if not args.kind or not args.value:
            raise CliError("name the person: --kind cccd|phone|email --value - (the value is then read from stdin)")
        if args.value != "-":
            print("lscloud: the identifier is now in your shell history; prefer --value - next time",
                  file=sys.stderr)
        try:
            subject = erasure.Subject(args.kind, erasure.read_value(args.value, prompt=f"{args.kind}: "))
        except erasure.InvalidSubject as exc:
            raise CliError(str(exc)) from None
    chosen = set(args.function or [])
    if args.from_env:
        # the cluster: the function's own bucket, credentials and pseudonym key in the environment
        settings = config.load()
        dirs = {m.name: m.root for m in manifests.discover([Path(d) for d in default_dirs()])}
    else:
        cloud = running_cloud(_state_dir(args))
        settings = local_cloud.cloud_settings(cloud)
        dirs = {name: Path(f["dir"]) for name, f in cloud["functions"].items()}
    unknown = chosen - set(dirs)
    if unknown:
        raise CliError(f"no function named {', '.join(sorted(unknown))}")
    hooks, without = erasure.load_hooks({n: d for n, d in dirs.items() if not chosen or n in chosen})
    if not hooks:
        raise CliError("none of these functions has an erasure hook (function/erase.py)")
    previous = runtime.installed()
    rt = runtime.install(runtime.Runtime(settings))
    try:
        record = erasure.run(rt, subject, hooks, operator=args.operator or getpass.getuser(), without_hook=without,
                             reapplies=reapplies)
    finally:
        rt.close()
        if previous is not None:   # a process that already had a runtime (a test's) keeps it
            runtime.install(previous)
        else:
            runtime.uninstall()
    print(json.dumps(record, ensure_ascii=False, indent=2, default=str))
    print(f"recorded as {record['record']} — keep this record apart from the backups: `lscloud erase --reapply FILE` "
          "applies it again after a restore", file=sys.stderr)
    return EXIT_FAIL if record["failed"] else EXIT_OK


def cmd_backup(args) -> int:
    from .local import backup as bk

    return bk.command_backup(_state_dir(args), Path(args.dest))


def cmd_restore(args) -> int:
    from .local import backup as bk

    return bk.command_restore(_state_dir(args), Path(args.src))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lscloud", description="Lạng Sơn Cloud: the local cloud and its tools.")
    p.add_argument("--state-dir", default=config.environ().get("LSCLOUD_STATE_DIR", ".lscloud"),
                   help="where the local cloud keeps data, keys, logs and traces (default .lscloud)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, fn, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        # also accepted after the command: `lscloud up --state-dir x`
        sp.add_argument("--state-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.set_defaults(fn=fn)
        return sp

    up = add("up", cmd_up, "run the local cloud (servers, functions, dispatcher, gateway) until Ctrl-C")
    up.add_argument("--port", type=int, default=8080, help="gateway port (default 8080; 0 = any free port)")
    up.add_argument("--host", default="127.0.0.1", help="gateway address (default 127.0.0.1)")
    up.add_argument("--functions-dir", action="append", metavar="DIR",
                    help="folder of functions (each with func.yaml); repeatable (default functions and peers)")
    up.add_argument("--only", action="append", metavar="NAME", help="start only this function; repeatable")
    up.add_argument("--s3-endpoint", help="use this S3 endpoint (MinIO …) instead of starting weed mini")
    up.add_argument("--s3-access-key")
    up.add_argument("--s3-secret-key")
    up.add_argument("--nats-url", help="use this NATS server instead of starting nats-server")

    add("status", cmd_status, "show the running local cloud and its functions' health")

    down = add("down", cmd_down, "stop the `lscloud up` of --state-dir as Ctrl-C does (SIGTERM: it stops "
                                 "everything in order), or what it left running if it died; exit 1 if nothing ran, "
                                 "2 if something could not be stopped")
    down.add_argument("--timeout", type=float, default=30.0,
                      help="seconds to wait for an orderly stop before SIGKILL of what is left (default 30)")

    tok = add("token", cmd_token, "print a dev bearer token signed with the state dir's dev key")
    tok.add_argument("--role", required=True, help="e.g. citizen, officer, admin")
    tok.add_argument("--agency")
    tok.add_argument("--unit")
    tok.add_argument("--sub", help="subject (default dev-<role>)")
    tok.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")

    docs = add("docs", cmd_docs, "write the README's who-may-call tables from each function's access.yaml")
    docs.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is out of date")
    docs.add_argument("--root", default=".", help="the project folder (default: the current one)")

    seed = add("seed", cmd_seed, "load every function's reference data again (forced)")
    seed.add_argument("functions", nargs="*", metavar="FUNCTION", help="only these functions")

    mig = add("migrate", cmd_migrate, "move data an older version wrote into today's layout (once per version; "
                                      "`lscloud up` does it at start)")
    mig.add_argument("functions", nargs="*", metavar="FUNCTION", help="only these functions")
    mig.add_argument("--force", action="store_true", help="run even if this migration already ran")
    mig.add_argument("--from-env", action="store_true",
                     help="not a running local cloud: the store, bucket and pseudonym key from the environment "
                          "(the cluster: run with each function's own environment)")

    bk = add("backup", cmd_backup, "copy the local cloud's objects, event streams (with consumer positions) and keys "
                                   "into a new folder")
    bk.add_argument("dest", help="a new (or empty) folder")
    rs = add("restore", cmd_restore, "put a backup back into a fresh state dir (--state-dir) and check it")
    rs.add_argument("src", help="a folder written by `lscloud backup`")

    er = add("erase", cmd_erase, "erase one person's data on their request (Law 91/2025/QH15) in every function with "
                                 "an erasure hook, record the request and print what was erased and what was kept")
    er.add_argument("--kind", choices=("cccd", "phone", "email"), help="what identifies the person")
    er.add_argument("--value", help="the identifier; `-` reads it from stdin (a prompt that does not echo): it then "
                                    "stays out of the shell history")
    er.add_argument("--function", action="append", metavar="NAME", help="only this function; repeatable")
    er.add_argument("--operator", help="who makes the request, as recorded (default: the login name)")
    er.add_argument("--reapply", metavar="FILE", help="apply a recorded request again (its record, as this command "
                                                     "printed it), after a backup from before it was restored")
    er.add_argument("--from-env", action="store_true",
                    help="not a running local cloud: the store, bucket and pseudonym key from the environment "
                         "(the cluster: run with a function's own environment)")

    sc = add("store-check", cmd_store_check, "check that the object store keeps the conditional writes the runtime "
                                              "rests on (create-only, If-Match, races, conditional GET and DELETE); "
                                              "exit 1 if one it needs is broken")
    sc.add_argument("--from-env", action="store_true",
                    help="not a running local cloud: the store, bucket and settings from the environment (the cluster: "
                         "run with a function's own environment)")
    sc.add_argument("--writers", type=int, default=8, help="writers in each race (default 8)")

    kit = add("bank-kit", None, "the partner-bank kit of the soft ATM")
    kit_sub = kit.add_subparsers(dest="kit_command", required=True, metavar="SUBCOMMAND")
    kc = kit_sub.add_parser("check", help="run, against the bank registered under --bank, the checks it must pass "
                                          "before go-live (signatures, webhooks, replays, retries, reserve/reject/"
                                          "confirm, settlement); exit 1 on any failure")
    kc.add_argument("--state-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    kc.add_argument("--bank", required=True, help="the bank's code at the soft ATM (e.g. simbank)")
    kc.add_argument("--account", help="a funded test account at the bank (default: the simulated bank's first)")
    kc.add_argument("--reject-account", help="an account whose withdrawals the bank must reject")
    kc.add_argument("--wait", type=float, default=60.0, help="seconds to wait for each answer of the bank (default 60)")
    kc.set_defaults(fn=cmd_bank_kit)

    dlq = add("dlq", cmd_dlq, "show dead-lettered events")
    dlq.add_argument("-n", type=int, default=20, help="how many (default 20)")

    ev = add("events", None, "look at the event stream")
    ev_sub = ev.add_subparsers(dest="events_command", required=True, metavar="SUBCOMMAND")
    tail = ev_sub.add_parser("tail", help="the last events in the stream")
    tail.add_argument("--state-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    tail.add_argument("-n", type=int, default=20, help="how many (default 20)")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.set_defaults(fn=cmd_events_tail)

    tr = add("traces", cmd_traces, "show recent traces from the local span log as trees")
    tr.add_argument("-n", type=int, default=5, help="how many traces (default 5)")
    tr.add_argument("--trace-id", help="only this trace")
    tr.add_argument("--where", metavar="ROUTE",
                    help="instead of trees: where the time of every request to ROUTE goes along its critical path, "
                         "ROUTE as its SERVER span is named (e.g. \"POST /v1/declarations\")")
    tr.add_argument("--skip", type=int, default=0, metavar="N", help="with --where: leave out the first N requests "
                                                                    "(a warm-up)")
    tr.add_argument("--follow-events", action="store_true",
                    help="with --where: the requests wait for the consumers of the events they publish (a long-poll: "
                         "the path goes on through the broker and the consumer)")

    bench = add("bench", None, "benchmarks that print figures")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    from .local.benches import add_parsers

    add_parsers(bench_sub, cmd_bench)

    fz = add("fuzz", cmd_fuzz, "schemathesis (--checks all) over every function's OpenAPI with tokens of several "
                               "roles; fails on any 5xx or 4xx that is not problem+json")
    fz.add_argument("--base-url", default="http://127.0.0.1:8080", help="the gateway (default http://127.0.0.1:8080)")
    fz.add_argument("--direct", action="store_true",
                    help="fuzz each function on its own port (from the running cloud of --state-dir), not via the gateway")
    fz.add_argument("--function", action="append", metavar="NAME", help="only this function; repeatable")
    fz.add_argument("--cases", type=int, default=1000, help="cases per function, spread over its operations (default 1000)")
    fz.add_argument("--seed", type=int, help="schemathesis's random seed (to repeat a run)")
    fz.add_argument("--workers", type=int, default=1, help="concurrent schemathesis workers per function (default 1)")
    fz.add_argument("--phases", default="examples,coverage,fuzzing,stateful",
                    help="schemathesis phases, comma-separated (default: all four)")
    fz.add_argument("--token-ttl", type=int, default=3600, help="lifetime of the minted tokens, seconds (default 3600)")
    fz.add_argument("--report-dir", help="where HAR files and reports go (default <state dir>/fuzz)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except CliError as exc:
        print(f"lscloud: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except RuntimeError as exc:
        from .local.backup import BackupError

        if not isinstance(exc, BackupError):
            raise
        print(f"lscloud: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except ValueError as exc:
        from .config import ConfigError
        from .manifest import ManifestError

        if not isinstance(exc, (ConfigError, ManifestError)):
            raise
        print(f"lscloud: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
