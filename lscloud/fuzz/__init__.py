"""`lscloud fuzz`: schemathesis over every function's OpenAPI document of a running local cloud.

For each function the runner reads ``<function>/openapi.json``, mints a dev bearer token for each
role the document names (the way `lscloud token` does, from the state dir's dev key), and runs
schemathesis's own CLI (``st run --checks all``, every phase, positive and negative data) against
the function — through the gateway by default, or straight at the function's own port
(``direct``). A hook (:mod:`lscloud.fuzz.hooks`) puts on each case a token of a role that the
operation admits. Schemathesis records every exchange in a HAR file; the runner counts them:

- cases schemathesis generated, responses by status class, 5xx answers;
- 4xx answers that are not ``application/problem+json`` with ``type``, ``title`` and ``status``
  — except on a path whose OpenAPI documents its errors in another format and not as problems
  (Open311's paths answer the GeoReport spec's errors list, in JSON or XML, for every method): there
  a 4xx counts when it is in a documented media type and, for JSON, valid against the documented
  schema (:func:`documented_errors`);
- schemathesis's own check failures by code (``ST101`` server error, ``ST202`` valid data
  rejected …), which are reported but only 5xx and non-problem 4xx fail the run. Read from the
  run's NDJSON events, each failing case is also told apart by the answer it got: a path that
  breaks a parameter's documented rule is refused by the gateway before any function sees it
  (``malformed-path``, 400), where a check expecting the function's 401 or 405 (``ST203``,
  ``ST204``) or a documented media type (``ST105``) fails. Those are counted as the gateway's,
  so what is left under a code is what the functions answered (:func:`count_events`).

Operations the eventing sender calls (``/events``) are left out: they take CloudEvents from
the broker only and are tested with their sender authentication. Signed partner (bank)
operations are fuzzed without a signature: they must refuse every case with a 401 problem.

An operation that answers a stream (``text/event-stream``: the IOC wall's ``/v1/stream``) holds
every valid case open for as long as the stream lasts (up to a minute there): generated at random
by the fuzzing phases, its cases took most of a full run (the IOC alone over 13 minutes). It gets
a round of its own with the examples and coverage phases only — every documented value's edge,
valid and not, which is where its parameter checks are — and is left out of the other rounds.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit
from xml.etree import ElementTree

from .. import config
from ..problems import type_uri

SCHEMATHESIS_VERSION = "4.32.5"  # the CLI options below are this version's (pinned in pyproject's fuzz extra)
PROBLEM_TYPE = "application/problem+json"
EVENTING = "eventing"

# claims that put a role's token somewhere the local cloud's seed data knows, so cases get past
# "not your gate / point / agency" into the handlers
ROLE_CLAIMS: dict[str, dict[str, str]] = {
    "citizen": {"sub": "020095001234"},
    "enterprise": {"sub": "0101234567"},
    "driver": {"sub": "020095001234"},
    "officer": {"agency": "customs", "unit": "huu-nghi"},
    "supervisor": {"agency": "so-xay-dung"},
    "yard-operator": {"unit": "huu-nghi"},
    "gate-operator": {"unit": "huu-nghi"},
    "device": {"unit": "huu-nghi"},
    "teller": {"unit": "bd-06040"},
}


class FuzzError(RuntimeError):
    """The fuzz run could not be carried out (no schemathesis, no answer from the cloud …)."""


@dataclass
class Target:
    """One function to fuzz: its base URL (requests go to ``base_url + path``)."""

    name: str
    base_url: str


@dataclass
class Result:
    """What one function's run found."""

    name: str
    base_url: str
    cases: int = 0
    responses: int = 0
    by_class: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)       # "500 GET /v1/x?…" samples
    server_error_count: int = 0
    not_problem: list[str] = field(default_factory=list)
    not_problem_count: int = 0
    network_errors: int = 0
    failures: Counter = field(default_factory=Counter)            # schemathesis check codes
    failing_cases: Counter = field(default_factory=Counter)       # check code -> cases that failed it
    at_the_gateway: Counter = field(default_factory=Counter)      # … of them refused as a malformed path
    roles: list[str] = field(default_factory=list)
    exit_code: int | None = None
    har: str | None = None
    error: str | None = None
    _last_cases: int = -1

    @property
    def ok(self) -> bool:
        return self.error is None and self.server_error_count == 0 and self.not_problem_count == 0


# -- the plan: roles and tokens -------------------------------------------------------------------

def plan_for(openapi: dict, mint: Callable[[str], str]) -> dict:
    """Operation -> roles that may call it, and one token per role (``mint(role)``)."""
    operations: dict[str, list[str]] = {}
    every_role: set[str] = set()
    for path, ops in (openapi.get("paths") or {}).items():
        for method, op in ops.items():
            access = op.get("x-lscloud-access") or {}
            roles = [r for r in access.get("roles", []) if r not in ("public", EVENTING)]
            every_role.update(roles)
            if "public" in access.get("roles", []) or access.get("partner") and not roles:
                roles = []  # public (any role or none) / partner-signed (a token changes nothing)
            operations[f"{method.upper()} {path}"] = roles
    ordered = sorted(every_role)
    from .hooks import ANONYMOUS

    return {"operations": {k: v for k, v in operations.items() if v},
            "public_roles": ordered + [ANONYMOUS],
            "tokens": {role: mint(role) for role in ordered}}


def eventing_paths(openapi: dict) -> list[str]:
    return sorted({path for path, ops in (openapi.get("paths") or {}).items() for op in ops.values()
                   if EVENTING in (op.get("x-lscloud-access") or {}).get("roles", [])})


STREAMING = "text/event-stream"
STREAM_PHASES = ("examples", "coverage")   # the phases a streaming operation is fuzzed in (module docstring)


def streaming_paths(openapi: dict) -> list[str]:
    """Paths with an operation whose success is a stream of events (:data:`STREAMING`)."""
    return sorted({path for path, ops in (openapi.get("paths") or {}).items() for op in ops.values()
                   if isinstance(op, dict) and any(STREAMING in (resp.get("content") or {})
                                                   for code, resp in (op.get("responses") or {}).items()
                                                   if str(code).startswith("2") and isinstance(resp, dict))})


# -- reading schemathesis's reports ---------------------------------------------------------------

ErrorFormats = list[tuple["re.Pattern[str]", dict[str, Any]]]


def documented_errors(openapi: dict) -> ErrorFormats:
    """The paths whose 4xx answers the document gives in formats other than problem+json, none of
    them a problem: (the path template as a pattern, {media type: a validator of the parsed JSON body,
    or None}). Every method of such a path counts (a 405 for an undeclared one is in the same format).
    The validator is the runtime's own dialect (:class:`lscloud.validation.StrictValidator`, draft
    2020-12 as OpenAPI 3.1 means it), the one the functions' schemas are written for."""
    from ..validation import StrictValidator

    out: ErrorFormats = []
    components = openapi.get("components") or {}
    for path, ops in (openapi.get("paths") or {}).items():
        formats: dict[str, Callable[[object], object] | None] = {}
        problems = False
        for op in ops.values():
            if not isinstance(op, dict):
                continue
            for code, answer in (op.get("responses") or {}).items():
                if not (str(code).startswith("4") or code == "default"):
                    continue
                for media, content in ((answer or {}).get("content") or {}).items():
                    if media == PROBLEM_TYPE:
                        problems = True
                    elif media not in formats:
                        schema = (content or {}).get("schema")
                        formats[media] = (StrictValidator({**schema, "components": components})
                                          if isinstance(schema, dict) and media.endswith("json") else None)
        if formats and not problems:
            pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part)
                              for part in re.split(r"(\{[^}]*\})", path))
            out.append((re.compile(pattern), formats))
    return out


def _media_type(response: dict) -> str:
    headers = {h["name"].lower(): h["value"] for h in response.get("headers", [])}
    return (headers.get("content-type") or response.get("content", {}).get("mimeType") or "").split(";")[0] \
        .strip().lower()


def _is_problem(response: dict) -> bool:
    if _media_type(response) != PROBLEM_TYPE:
        return False
    try:
        body = json.loads(response.get("content", {}).get("text") or "")
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("type"), str) and isinstance(body.get("title"), str) \
        and body.get("status") == response.get("status")


def _is_documented_error(path: str, response: dict, documented: ErrorFormats) -> bool:
    """The 4xx is in a format ``documented`` for ``path`` (and valid against its schema)."""
    media = _media_type(response)
    text = response.get("content", {}).get("text") or ""
    for pattern, formats in documented:
        if not pattern.fullmatch(path) or media not in formats:
            continue
        try:
            if media.endswith("json"):
                validator = formats[media]
                body = json.loads(text)
                return validator is None or validator.is_valid(body)
            if media.endswith("xml"):
                ElementTree.fromstring(text)   # our own server's answer: well-formed is what is checked
            return True
        except (ValueError, ElementTree.ParseError):
            return False
    return False


def _path_below(base: str, url: str) -> str:
    """The path of ``url`` as the function's document names it (below the gateway's prefix, if any)."""
    path = urlsplit(url).path
    return path[len(base):] if base and path.startswith(base + "/") else path


def count_har(result: Result, har: dict, samples: int = 5, documented: ErrorFormats = ()) -> None:
    """Add the exchanges of a HAR log to ``result``; ``documented``: paths whose errors are not
    problems (:func:`documented_errors`)."""
    base = urlsplit(result.base_url).path.rstrip("/")
    for entry in har.get("log", {}).get("entries", []):
        response = entry.get("response") or {}
        status = int(response.get("status") or 0)
        request = entry.get("request") or {}
        line = f"{status} {request.get('method')} {request.get('url', '')[:200]}"
        if status == 0:
            result.network_errors += 1
            continue
        result.responses += 1
        result.by_class[f"{status // 100}xx"] += 1
        if status >= 500:
            result.server_error_count += 1
            if len(result.server_errors) < samples:
                result.server_errors.append(line)
        elif 400 <= status < 500 and not _is_problem(response) and not (
                documented and _is_documented_error(_path_below(base, request.get("url", "")), response,
                                                    documented)):
            result.not_problem_count += 1
            if len(result.not_problem) < samples:
                result.not_problem.append(line)


def count_report(result: Result, report: dict) -> None:
    """Cases and check failures from schemathesis's JSON run report."""
    result.cases += int((report.get("test_cases") or {}).get("generated") or 0)
    for failure in report.get("failures") or []:
        result.failures[f"{failure.get('code')} {failure.get('title')}"] += int(failure.get("count") or 0)


GATEWAY_REFUSAL = type_uri("malformed-path")
"""The problem type the gateway answers a path it does not forward with (400)."""


def _refused_at_the_gateway(response: dict) -> bool:
    content = response.get("content")   # bytes, as schemathesis writes them: {"$base64": …}
    if response.get("status_code") != 400 or not isinstance(content, dict):
        return False
    try:
        body = json.loads(base64.b64decode(content.get("$base64") or ""))
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("type") == GATEWAY_REFUSAL


def count_events(result: Result, lines: Iterable[str]) -> None:
    """Each case that failed a check, by the check's code, from schemathesis's NDJSON events; and of
    them, those whose answer was the gateway's refusal of a malformed path. A case reported again (a
    later event of the same scenario) is counted once."""
    counted: set[str] = set()
    for line in lines:
        try:
            finished = json.loads(line).get("ScenarioFinished")
        except (ValueError, AttributeError):
            continue
        if not isinstance(finished, dict):
            continue
        recorder = finished.get("recorder") or {}
        interactions = recorder.get("interactions") or {}
        for case_id, checks in (recorder.get("checks") or {}).items():
            codes = {((c.get("failure_info") or {}).get("failure") or {}).get("code")
                     for c in checks or [] if c.get("status") == "failure"} - {None}
            if not codes or case_id in counted:
                continue
            counted.add(case_id)
            response = (interactions.get(case_id) or {}).get("response") or {}
            gateway = _refused_at_the_gateway(response)
            for code in codes:
                result.failing_cases[code] += 1
                if gateway:
                    result.at_the_gateway[code] += 1


# -- running ------------------------------------------------------------------------------------

def _check_schemathesis() -> None:
    try:
        import schemathesis
    except ImportError:
        raise FuzzError("schemathesis is not installed: python3 -m pip install -e '.[fuzz]'") from None
    if schemathesis.__version__ != SCHEMATHESIS_VERSION:
        raise FuzzError(f"lscloud fuzz drives schemathesis {SCHEMATHESIS_VERSION}; {schemathesis.__version__} "
                        "is installed (its CLI options differ between versions)")


def fetch_openapi(url: str, timeout: float = 30) -> dict:
    import httpx

    try:
        resp = httpx.get(url, timeout=timeout, trust_env=False)
        resp.raise_for_status()
        return resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise FuzzError(f"cannot read {url}: {exc}") from None


PHASES = ("examples", "coverage", "fuzzing", "stateful")


MAX_ROUNDS = 6


def fuzz_one(target: Target, *, cases: int, mint: Callable[[str], str], report_dir: Path, seed: int | None = None,
             workers: int = 1, request_timeout: float = 70.0, phases: Iterable[str] = PHASES,
             extra_args: Iterable[str] = ()) -> Result:
    """Run schemathesis against one function until it generated ``cases`` cases; count what came back.

    The first round runs every phase asked for; an operation with few parameters exhausts its
    cases early, so further rounds (fuzzing only, another seed) run until the count is reached
    or :data:`MAX_ROUNDS` have run.
    """
    result = Result(target.name, target.base_url)
    openapi = fetch_openapi(target.base_url + "/openapi.json")
    plan = plan_for(openapi, mint)
    documented = documented_errors(openapi)
    result.roles = [r for r in plan["public_roles"] if r]
    n_ops = sum(len(ops) for ops in (openapi.get("paths") or {}).values()) or 1
    report_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(plan, f)
        plan_file = f.name
    phases = list(phases)
    eventing = eventing_paths(openapi)
    streams = [path for path in streaming_paths(openapi) if path not in eventing]

    def st_run(max_examples: int, round_phases: list[str]) -> list[str]:
        return [sys.executable, "-m", "schemathesis.cli", "run", target.base_url + "/openapi.json",
                "--url", target.base_url, "--checks", "all", "--mode", "all", "--max-examples", str(max_examples),
                "--workers", str(workers), "--request-timeout", str(request_timeout), "--no-shrink",
                "--continue-on-failure", "--suppress-health-check", "all", "--warnings", "off",
                "--phases", ",".join(round_phases)]

    try:
        for round_ in range(1, MAX_ROUNDS + 1):
            missing = cases - result.cases
            if missing <= 0 or result.error:
                break
            stem = target.name if round_ == 1 else f"{target.name}.{round_}"
            argv = st_run(max(1, math.ceil(missing / n_ops)), phases if round_ == 1 else ["fuzzing"])
            for path in eventing + streams:
                argv += ["--exclude-path", path]
            if seed is not None:
                argv += ["--seed", str(seed + round_ - 1)]
            _run_round(result, argv + list(extra_args), report_dir, stem, plan_file, documented)
            if round_ > 1 and result.cases < cases and result.cases == result._last_cases:
                break  # nothing new to generate
            result._last_cases = result.cases
        stream_phases = [ph for ph in phases if ph in STREAM_PHASES]
        if streams and stream_phases and not result.error:
            argv = st_run(2, stream_phases)
            for path in streams:
                argv += ["--include-path", path]
            if seed is not None:
                argv += ["--seed", str(seed)]
            _run_round(result, argv + list(extra_args), report_dir, f"{target.name}.streams", plan_file, documented)
    finally:
        os.unlink(plan_file)
    return result


def _run_round(result: Result, argv: list[str], report_dir: Path, stem: str, plan_file: str,
               documented: ErrorFormats = ()) -> None:
    har_path, json_path, events_path, log = (report_dir / f"{stem}.har.json", report_dir / f"{stem}.report.json",
                                             report_dir / f"{stem}.ndjson", report_dir / f"{stem}.log")
    for stale in (har_path, json_path, events_path):
        stale.unlink(missing_ok=True)
    argv = argv + ["--report", "har,json,ndjson", "--report-har-path", str(har_path),
                   "--report-json-path", str(json_path), "--report-ndjson-path", str(events_path)]
    env = {**config.environ(), "SCHEMATHESIS_HOOKS": "lscloud.fuzz.hooks", "LSCLOUD_FUZZ_PLAN": plan_file,
           "NO_COLOR": "1"}
    with open(log, "wb") as out:
        # run in the report dir: schemathesis keeps a cache folder in its working directory
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                              cwd=report_dir)
    result.exit_code = proc.returncode if result.exit_code in (None, 0) else result.exit_code
    try:
        count_har(result, json.loads(har_path.read_text(encoding="utf-8")), documented=documented)
        count_report(result, json.loads(json_path.read_text(encoding="utf-8")))
        with open(events_path, encoding="utf-8") as events:
            count_events(result, events)
        result.har = result.har or str(har_path)
    except (OSError, ValueError) as exc:
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        result.error = f"schemathesis wrote no report ({exc.__class__.__name__}); see {log}\n{tail}"


def fuzz(targets: list[Target], *, cases: int, mint: Callable[[str], str], report_dir: Path,
         seed: int | None = None, workers: int = 1, progress: Callable[[str], None] = lambda s: None,
         phases: Iterable[str] = PHASES, extra_args: Iterable[str] = ()) -> list[Result]:
    """Fuzz each target in turn."""
    _check_schemathesis()
    results = []
    for target in targets:
        progress(f"… fuzzing {target.name} ({target.base_url}), about {cases} cases")
        results.append(fuzz_one(target, cases=cases, mint=mint, report_dir=report_dir, seed=seed, workers=workers,
                                phases=phases, extra_args=extra_args))
    return results


def _gateway_share(r: Result, failure: str) -> str:
    code = failure.split(" ", 1)[0]
    failing, gateway = r.failing_cases[code], r.at_the_gateway[code]
    if not gateway:
        return ""
    whose = "all of them" if gateway == failing else f"{gateway} of {failing}"
    return f" (failing cases: {failing}; {whose} the gateway's malformed-path 400, before any function)"


def format_results(results: list[Result]) -> str:
    """The per-function table and the samples of what went wrong."""
    head = f"{'function':12} {'cases':>6} {'responses':>9} {'2xx':>5} {'3xx':>4} {'4xx':>5} {'5xx':>4} " \
           f"{'4xx not problem':>15} {'net err':>7}  roles"
    lines = [head, "-" * len(head)]
    for r in results:
        c = r.by_class
        lines.append(f"{r.name:12} {r.cases:>6} {r.responses:>9} {c['2xx']:>5} {c['3xx']:>4} {c['4xx']:>5} "
                     f"{r.server_error_count:>4} {r.not_problem_count:>15} {r.network_errors:>7}  "
                     f"{','.join(r.roles) or '-'}")
    total = sum(r.server_error_count for r in results), sum(r.not_problem_count for r in results)
    lines.append(f"total: {sum(r.cases for r in results)} cases, {sum(r.responses for r in results)} responses, "
                 f"{total[0]} 5xx, {total[1]} 4xx not problem+json")
    for r in results:
        notes = []
        if r.error:
            notes.append(f"  error: {r.error}")
        notes += [f"  5xx: {s}" for s in r.server_errors]
        notes += [f"  4xx not problem+json: {s}" for s in r.not_problem]
        notes += [f"  schemathesis {code}: {n}{_gateway_share(r, code)}" for code, n in sorted(r.failures.items())]
        if notes:
            lines.append(f"{r.name} (HAR: {r.har or '-'}):")
            lines += notes
    return "\n".join(lines)
