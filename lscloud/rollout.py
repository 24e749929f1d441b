"""Wait until a Knative Service's rollout is over: no pod of an older revision of it is left.

    python -m lscloud.rollout wait SERVICE [--namespace NS] [--timeout-s 1800] [--poll-s 5]

The first step of a function's after-rollout migration Job in the cluster (infra/components/hooks.py,
``python -m lscloud.serve --migrate --after-rollout``): while Knative rolls out a new revision it
keeps the older one's replicas serving, and they write the older layout, after the first phase of
the migration ran. The second phase must start only once none of them can write any more.

"Over" means: the Service's controller has seen its latest spec (``status.observedGeneration``), it
names its latest ready revision (``status.latestReadyRevisionName``), and no pod labelled
``serving.knative.dev/service=SERVICE`` of another revision is still there (a pod that has
finished, ``Succeeded`` or ``Failed``, writes nothing; one terminating still may). A Service whose
revisions scaled to zero has no pod at all: over.

It asks the Kubernetes API with the pod's service-account token, CA and namespace (the standard
mount, ``/var/run/secrets/kubernetes.io/serviceaccount``; the token is read again for every request,
as the kubelet renews it), at ``https://kubernetes.default.svc``: it needs ``get`` on that one
``services.serving.knative.dev`` and ``list`` on pods, nothing else. Standard library only: the
function image's runtime, no client library.

Exit status: 0 when the rollout is over; 3 when older pods are still there at the deadline (the
Job's ``podFailurePolicy`` fails the Job on it at once, without retries: someone must look, e.g. a
traffic split that pins an older revision); 1 when the API refuses (no such Service, no permission:
the Job's retries then fail it). An API that does not answer, or answers 5xx, is asked again until
the deadline.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# the API server's name in every pod, in its certificate, as the functions reach its JWKS
API_URL = "https://kubernetes.default.svc"
SERVICE_LABEL = "serving.knative.dev/service"
REVISION_LABEL = "serving.knative.dev/revision"
TIMEOUT_S = 1800.0
POLL_S = 5.0
EXIT_TIMED_OUT = 3
FINISHED = ("Succeeded", "Failed")


class RolloutError(RuntimeError):
    """The API refused a request no retry mends (exit 1)."""


class RolloutTimeout(RuntimeError):
    """Pods of an older revision were still there at the deadline (exit 3)."""


class Unanswered(RuntimeError):
    """The API did not answer, or answered 5xx: asked again at the next poll."""


@dataclass
class Api:
    """GETs JSON from the Kubernetes API as the pod's service account."""

    url: str = API_URL
    token_file: Path = ACCOUNT_DIR / "token"
    ca_file: Path | None = ACCOUNT_DIR / "ca.crt"
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else None
        # no proxy from the environment: the API server is reached directly
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                   urllib.request.HTTPSHandler(context=context))

    def get(self, path: str) -> dict:
        token = Path(self.token_file).read_text().strip()
        request = urllib.request.Request(self.url.rstrip("/") + path, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json"})
        try:
            with self._opener.open(request, timeout=self.timeout_s) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode(errors="replace")
            if exc.code >= 500 or exc.code == 429:
                raise Unanswered(f"GET {path}: {exc.code} {detail}") from None
            raise RolloutError(f"GET {path}: {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise Unanswered(f"GET {path}: {exc}") from None


@dataclass(frozen=True)
class State:
    latest: str | None            # the latest ready revision, once the controller saw the latest spec
    older: dict[str, list[str]]   # revision -> its pods still there

    @property
    def over(self) -> bool:
        return self.latest is not None and not self.older


def state(api: Api, namespace: str, service: str) -> State:
    ns = urllib.parse.quote(namespace, safe="")
    svc = api.get(f"/apis/serving.knative.dev/v1/namespaces/{ns}/services/{urllib.parse.quote(service, safe='')}")
    status = svc.get("status") or {}
    settled = status.get("observedGeneration", -1) >= (svc.get("metadata") or {}).get("generation", 0)
    latest = status.get("latestReadyRevisionName") if settled else None
    older: dict[str, list[str]] = {}
    query = {"labelSelector": f"{SERVICE_LABEL}={service}", "limit": "500"}
    while True:
        pods = api.get(f"/api/v1/namespaces/{ns}/pods?{urllib.parse.urlencode(query)}")
        for pod in pods.get("items") or []:
            meta = pod.get("metadata") or {}
            revision = (meta.get("labels") or {}).get(REVISION_LABEL, "")
            if revision != latest and (pod.get("status") or {}).get("phase") not in FINISHED:
                older.setdefault(revision, []).append(meta.get("name", "?"))
        more = (pods.get("metadata") or {}).get("continue")
        if not more:
            return State(latest, older)
        query["continue"] = more


def wait(api: Api, namespace: str, service: str, *, timeout_s: float = TIMEOUT_S, poll_s: float = POLL_S,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
         say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> State:
    """Poll every ``poll_s`` until the rollout of ``service`` is over; :class:`RolloutTimeout` if it
    is not within ``timeout_s``, :class:`RolloutError` if the API refuses."""
    deadline = clock() + timeout_s
    last, said = None, None
    while True:
        try:
            last = state(api, namespace, service)
            if last.over:
                say(f"lscloud.rollout: {service}: chỉ còn bản {last.latest} chạy / "
                    f"only revision {last.latest} runs")
                return last
            seen = (last.latest, tuple(sorted(last.older)))
            if seen != said:   # what changed, not a line every poll
                said = seen
                say(f"lscloud.rollout: {service}: chờ các bản cũ dừng / waiting for older revisions to stop: "
                    f"{_describe(last)}")
        except Unanswered as exc:
            say(f"lscloud.rollout: {service}: API chưa trả lời / API did not answer: {exc}")
        if clock() >= deadline:
            raise RolloutTimeout(
                f"{service}: sau {timeout_s / 60:.0f} phút bản cũ vẫn chạy, chưa chạy lại bước chuyển dữ liệu "
                f"(kiểm tra lưu lượng của Service) / after {timeout_s / 60:.0f} min older revisions still run, "
                f"the migration's second phase did not run (check the Service's traffic): "
                f"{_describe(last) if last else 'the API never answered'}")
        sleep(poll_s)


def _describe(s: State) -> str:
    if s.latest is None:
        return "no latest ready revision yet"
    pods = "; ".join(f"{rev or '?'}: {', '.join(sorted(names))}" for rev, names in sorted(s.older.items()))
    return f"latest {s.latest}; older {pods}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lscloud.rollout",
                                     description="Wait until no pod of an older revision of a Knative Service is left.")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("wait", help="wait for the rollout of SERVICE to be over")
    w.add_argument("service")
    w.add_argument("--namespace", help="default: the pod's own (its service account's)")
    w.add_argument("--timeout-s", type=float, default=TIMEOUT_S)
    w.add_argument("--poll-s", type=float, default=POLL_S)
    w.add_argument("--api-url", default=API_URL)
    w.add_argument("--account-dir", type=Path, default=ACCOUNT_DIR,
                   help="holds token, ca.crt and namespace (the service-account mount)")
    args = parser.parse_args(argv)
    ca = args.account_dir / "ca.crt"
    api = Api(url=args.api_url, token_file=args.account_dir / "token",
              ca_file=ca if ca.is_file() else None)
    namespace = args.namespace or (args.account_dir / "namespace").read_text().strip()
    try:
        wait(api, namespace, args.service, timeout_s=args.timeout_s, poll_s=args.poll_s)
    except RolloutTimeout as exc:
        print(f"lscloud.rollout: {exc}", file=sys.stderr, flush=True)
        return EXIT_TIMED_OUT
    except RolloutError as exc:
        print(f"lscloud.rollout: {args.service}: API từ chối / the API refused: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
