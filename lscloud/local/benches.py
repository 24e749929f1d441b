"""The `lscloud bench` benchmarks as one table: each names the function that runs it, what it measures
and its own options; the options every benchmark shares (clients, time cap, where the functions are,
measuring a cloud already running) are declared once.

A new benchmark is one `Bench` entry here, and its module under `lscloud/local/` — `cli.py` builds the
sub-commands from this table and calls the function with the options as keyword arguments.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Option:
    """One option of one benchmark: ``--flag`` → keyword ``dest`` of the bench function."""

    flag: str
    type: Callable[[str], Any]
    default: Any
    help: str

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Bench:
    """A benchmark: ``run`` is ``"module:function"`` under ``lscloud.local``."""

    name: str
    run: str
    help: str
    options: tuple[Option, ...] = ()
    concurrency: int = 8
    max_seconds: float | None = 60.0        # None: the benchmark has no per-target time cap
    reuse: bool = True                      # --reuse: measure the cloud already running on --state-dir

    def function(self) -> Callable[..., int]:
        module, name = self.run.split(":")
        return getattr(importlib.import_module(f"lscloud.local.{module}"), name)


def _n(flag: str, default: int, what: str) -> Option:
    return Option(flag, int, default, f"{what} (default {default})")


# a path and its baseline measured in turn, the ratio the median of the rounds (lscloud.local.bench_load.run_alternated)
ROUNDS = _n("--rounds", 3, "rounds of a path in turn with its baseline; the ratio is their median")

BENCHES: tuple[Bench, ...] = (
    Bench("all", "bench_all:bench_all", "every path against its same-run baseline and its goal, one table "
                                        "(--json FILE for tracking)",
          (Option("--scale", float, 1.0, "requests per benchmark, times its default (default 1)"),
           _n("--up-runs", 3, "`lscloud up` runs for the median"), ROUNDS),
          max_seconds=None, reuse=False),
    Bench("directory", "bench:bench_directory",
          "directory GET through the gateway vs direct vs bare hello vs raw S3",
          (_n("--requests", 1000, "requests per target"), ROUNDS), max_seconds=30.0),
    Bench("coldstart", "bench_coldstart:bench_coldstart",
          "every function's cold start (spawn → readiness 200) and peak RSS vs bare hello, same run",
          (_n("--runs", 3, "cold starts per function, for the median"),
           Option("--functions", str, "", "comma-separated functions to start (default every one)")),
          concurrency=1, max_seconds=None),
    Bench("border", "bench:bench_border", "border declarations/s (full stack, with events) vs raw S3 conditional "
                                          "PUTs; queue-position lookup with 10,000 trucks waiting",
          (_n("--requests", 300, "declarations to create"), _n("--waiting", 10_000, "trucks waiting ahead in the queue"),
           Option("--soak", bool, False, "then sustained load: --soak-rate declarations a minute for --soak-minutes, "
                                         "errors and p50/p99 per minute"),
           _n("--soak-minutes", 10, "minutes of --soak"), _n("--soak-rate", 1000, "declarations a minute in --soak"),
           ROUNDS)),
    Bench("procedures", "bench:bench_procedures", "catalogue search latency (p50/p99) via the gateway vs direct "
                                                  "vs a raw S3 GET of the snapshot it reads",
          (_n("--requests", 1000, "searches per target"),), max_seconds=30.0),
    Bench("dossiers", "bench_dossiers:bench_dossiers",
          "dossier submissions/s with their attachments (full stack) vs raw S3 PUTs",
          (_n("--requests", 200, "submissions"), ROUNDS)),
    Bench("listing", "bench_listing:bench_listing",
          "pages of a listing (Model.scan) from a large and a small table vs the same S3 calls made raw",
          (_n("--items", 3000, "items in the large table"), _n("--page", 20, "items a page"),
           _n("--requests", 400, "pages per target"), ROUNDS), max_seconds=30.0),
    Bench("softatm", "bench:bench_softatm", "committed soft ATM withdrawals/s end to end (bank sim reserving over "
                                            "webhooks) vs raw S3 conditional PUTs",
          (_n("--requests", 200, "withdrawals"),
           Option("--soak", bool, False, "then sustained load: --soak-rate withdrawals a minute for --soak-minutes, "
                                         "errors and p50/p99 per minute"),
           _n("--soak-minutes", 10, "minutes of --soak"), _n("--soak-rate", 600, "withdrawals a minute in --soak"),
           ROUNDS), max_seconds=120.0),
    Bench("environment", "bench_environment:bench_environment", "readings/s over HTTP and MQTT vs raw S3 PUTs; a "
                                                                "30-day hourly NGSI-LD temporal query vs raw GETs",
          (_n("--requests", 300, "HTTP requests of one reading"), _n("--mqtt-messages", 300, "MQTT messages of one reading"))),
    Bench("market", "bench_market:bench_market", "stamps issued/s (one batch) and scan latency vs raw S3 PUTs and GETs",
          (_n("--stamps", 100_000, "stamps in the batch"), _n("--scans", 2000, "scans of each kind"))),
    Bench("reports", "bench_reports:bench_reports", "reports created/s vs raw S3 PUTs; the nearby-duplicate lookup "
                                                    "with 100,000 reports vs raw GETs",
          (_n("--requests", 300, "reports to create"), _n("--reports", 100_000, "reports indexed for the lookup"),
           _n("--lookups", 50, "nearby lookups and raw GETs"))),
    Bench("ioc", "bench_ioc:bench_ioc", "events/s the IOC absorbs from the bus vs raw S3 PUTs; indicator read "
                                        "latency vs a raw S3 GET",
          (_n("--events", 2000, "citizen-report events published"), _n("--reads", 300, "reads of each kind")),
          max_seconds=120.0),
    Bench("assistant", "bench_assistant:bench_assistant", "the assistant's top-1/top-3/intent accuracy and latency "
                                                          "on its evaluation set; messages/s vs a bare function and "
                                                          "raw S3 GETs",
          (_n("--requests", 1000, "messages per load target"),)),
    Bench("documents", "bench_documents:bench_documents", "signature latency and signatures/s (one each, and a batch "
                                                          "approval) vs a raw S3 PUT of the same PDF",
          (_n("--requests", 30, "single signatures"),
           _n("--batch", 20, "documents in the batch approval (the function's DOCUMENTS_BATCH_MAX)")),
          concurrency=2, max_seconds=300.0),
)

BY_NAME = {b.name: b for b in BENCHES}
ALL_PARTS = ("directory", "border", "softatm", "dossiers", "listing", "up")   # what `bench all --only` picks from


def add_parsers(bench_sub: argparse._SubParsersAction, handler: Callable) -> None:
    """One sub-command per benchmark, its own options then the shared ones."""
    for b in BENCHES:
        p = bench_sub.add_parser(b.name, help=b.help)
        p.add_argument("--state-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        for o in b.options:
            if o.type is bool:   # a switch
                p.add_argument(o.flag, action="store_true", default=o.default, help=o.help)
            else:
                p.add_argument(o.flag, type=o.type, default=o.default, help=o.help)
        p.add_argument("--concurrency", type=int, default=b.concurrency,
                       help=f"parallel clients (default {b.concurrency})")
        if b.max_seconds is not None:
            p.add_argument("--max-seconds", type=float, default=b.max_seconds,
                           help=f"time cap per target (default {b.max_seconds:g})")
        if b.name == "all":
            p.add_argument("--json", metavar="FILE", help="write the rows as JSON to FILE")
            p.add_argument("--only", action="append", choices=ALL_PARTS, help="run only this benchmark (repeatable)")
        p.add_argument("--functions-dir", default="functions", help="where the functions are (default functions)")
        if b.reuse:
            p.add_argument("--reuse", action="store_true", help="measure the cloud already running on --state-dir")
        p.set_defaults(fn=handler)


def arguments(b: Bench, args: argparse.Namespace, state_dir: Callable[[], Path]) -> dict[str, Any]:
    """The keyword arguments of ``b``'s function from the parsed command line."""
    kw: dict[str, Any] = {o.dest: getattr(args, o.dest) for o in b.options}
    kw["concurrency"] = args.concurrency
    kw["functions_dir"] = Path(args.functions_dir)
    if b.max_seconds is not None:
        kw["max_seconds"] = args.max_seconds
    if b.reuse:
        kw["reuse_state_dir"] = state_dir() if args.reuse else None
    if b.name == "all":
        kw["json_path"] = Path(args.json) if args.json else None
        kw["only"] = tuple(args.only or ())
    return kw
