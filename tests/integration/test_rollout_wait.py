"""The after-rollout migration Job's first step (``python -m lscloud.rollout wait``) against a fake
Kubernetes API on a loopback server: it waits while a pod of an older revision of the Service is
there, goes on once none is, and fails (exit 3) when they outlast its bound. The clock is the
test's: no step sleeps."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from loopback_http import ok

from lscloud import rollout

SERVICE = "reports"
NS = "lscloud"
SERVICE_PATH = f"/apis/serving.knative.dev/v1/namespaces/{NS}/services/{SERVICE}"
PODS_PATH = f"/api/v1/namespaces/{NS}/pods"
TOKEN = "test-service-account-token"


def knative_service(latest: str, *, generation: int = 3, observed: int = 3) -> dict:
    return {"metadata": {"name": SERVICE, "generation": generation},
            "status": {"observedGeneration": observed, "latestReadyRevisionName": latest,
                       "latestCreatedRevisionName": latest}}


def pod(name: str, revision: str, phase: str = "Running") -> dict:
    return {"metadata": {"name": name, "labels": {rollout.SERVICE_LABEL: SERVICE, rollout.REVISION_LABEL: revision}},
            "status": {"phase": phase}}


class FakeApi:
    """Answers the Service and the pod lists the test scripts, one list per poll (the last one again
    once they run out); records what was asked."""

    def __init__(self, services: list[dict], pod_lists: list[list[dict]]):
        self.services, self.pod_lists = list(services), list(pod_lists)
        self.asked: list[tuple[str, dict, str]] = []

    def answer(self, method, path, headers, body):
        url = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(url.query))
        self.asked.append((url.path, query, headers.get("authorization", "")))
        if url.path == SERVICE_PATH:
            doc = self.services.pop(0) if len(self.services) > 1 else self.services[0]
        elif url.path == PODS_PATH:
            doc = {"items": self.pod_lists.pop(0) if len(self.pod_lists) > 1 else self.pod_lists[0]}
        else:
            gone = b'{"kind":"Status","code":404}'
            return f"HTTP/1.1 404 Not Found\r\nContent-Length: {len(gone)}\r\n\r\n".encode() + gone
        return ok(json.dumps(doc).encode())


class Clock:
    """The wait's clock and sleep: sleeping moves the clock on."""

    def __init__(self):
        self.now, self.slept = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


@pytest.fixture
def api(serve, tmp_path):
    def start(fake) -> rollout.Api:
        server = serve(fake.answer)
        (tmp_path / "token").write_text(TOKEN + "\n")
        return rollout.Api(url=server.url, token_file=tmp_path / "token", ca_file=None)
    return start


def wait(client, clock, **kw):
    lines: list[str] = []
    result = rollout.wait(client, NS, SERVICE, clock=clock, sleep=clock.sleep, say=lines.append, **kw)
    return result, lines


def test_it_waits_while_an_older_revisions_pod_is_there_and_goes_on_once_none_is(api):
    fake = FakeApi([knative_service("reports-00002")], [
        [pod("reports-00001-a", "reports-00001"), pod("reports-00001-b", "reports-00001", "Pending"),
         pod("reports-00002-a", "reports-00002")],
        [pod("reports-00001-a", "reports-00001"), pod("reports-00002-a", "reports-00002")],
        # a finished pod writes nothing
        [pod("reports-00001-b", "reports-00001", "Succeeded"), pod("reports-00002-a", "reports-00002")],
    ])
    clock = Clock()
    result, lines = wait(api(fake), clock, timeout_s=1800, poll_s=5)
    assert result.over and result.latest == "reports-00002"
    assert clock.slept == [5, 5]   # three polls
    pod_queries = [q for p, q, _ in fake.asked if p == PODS_PATH]
    assert len(pod_queries) == 3 and all(q["labelSelector"] == f"serving.knative.dev/service={SERVICE}"
                                         for q in pod_queries)
    assert {auth for _, _, auth in fake.asked} == {f"Bearer {TOKEN}"}
    # one line when the older pods are first seen (and when they change), not one a poll
    assert len(lines) == 2 and "reports-00001-a, reports-00001-b" in lines[0] and "only revision reports-00002" in lines[1]


def test_no_pod_at_all_is_a_rollout_that_is_over(api):
    clock = Clock()
    result, _ = wait(api(FakeApi([knative_service("reports-00002")], [[]])), clock)
    assert result.over and clock.slept == []


def test_a_service_its_controller_has_not_caught_up_with_is_waited_for(api):
    # the latest spec not yet seen: its latest ready revision may still be the older one
    fake = FakeApi([knative_service("reports-00001", generation=4, observed=3), knative_service("reports-00002",
                                                                                               generation=4, observed=4)],
                   [[pod("reports-00001-a", "reports-00001")], []])
    clock = Clock()
    result, lines = wait(api(fake), clock)
    assert result.latest == "reports-00002" and clock.slept == [rollout.POLL_S]
    assert "no latest ready revision yet" in lines[0]


def test_older_pods_that_outlast_the_bound_fail_it(api):
    fake = FakeApi([knative_service("reports-00002")], [[pod("reports-00001-a", "reports-00001")]])
    clock = Clock()
    with pytest.raises(rollout.RolloutTimeout) as failed:
        wait(api(fake), clock, timeout_s=60, poll_s=5)
    assert clock.now == 60 and len(clock.slept) == 12
    assert "reports-00001-a" in str(failed.value) and "phút" in str(failed.value) and "min" in str(failed.value)


def test_the_command_exits_3_on_the_bound_and_1_when_refused(serve, tmp_path, capsys):
    account = tmp_path / "account"
    account.mkdir()
    (account / "token").write_text(TOKEN)
    (account / "namespace").write_text(NS)
    server = serve(FakeApi([knative_service("reports-00002")], [[pod("reports-00001-a", "reports-00001")]]).answer)
    # a bound of 0: the first poll is the last
    assert rollout.main(["wait", SERVICE, "--timeout-s", "0", "--api-url", server.url,
                         "--account-dir", str(account)]) == rollout.EXIT_TIMED_OUT == 3
    assert "reports-00001-a" in capsys.readouterr().err

    def forbidden(*_):
        body = b'{"kind":"Status","code":403,"reason":"Forbidden"}'
        return f"HTTP/1.1 403 Forbidden\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body

    refusing = serve(forbidden)
    assert rollout.main(["wait", SERVICE, "--api-url", refusing.url, "--account-dir", str(account)]) == 1
    assert "403" in capsys.readouterr().err


def test_an_api_that_does_not_answer_is_asked_again(api):
    fake = FakeApi([knative_service("reports-00002")], [[]])
    answer = fake.answer
    calls = []

    def flaky(*args):
        calls.append(args[1])
        if len(calls) == 1:
            body = b"busy"
            return f"HTTP/1.1 503 Service Unavailable\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        return answer(*args)

    fake.answer = flaky
    clock = Clock()
    result, lines = wait(api(fake), clock)
    assert result.over and clock.slept == [rollout.POLL_S] and "503" in lines[0]


def test_pods_are_listed_page_by_page(api):
    fake = FakeApi([knative_service("reports-00002")], [[]])
    pages = [({"items": [pod("reports-00002-a", "reports-00002")]}, "next-page"),
             ({"items": [pod("reports-00001-z", "reports-00001")]}, "")]
    answer = fake.answer

    def paged(method, path, headers, body):
        if path.startswith(PODS_PATH):
            fake.asked.append((PODS_PATH, dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query)), ""))
            doc, more = pages[0] if "continue=" not in path else pages[1]
            return ok(json.dumps({**doc, "metadata": {"continue": more}}).encode())
        return answer(method, path, headers, body)

    fake.answer = paged
    s = rollout.state(api(fake), NS, SERVICE)
    assert s.older == {"reports-00001": ["reports-00001-z"]}
    assert [q.get("continue") for p, q, _ in fake.asked if p == PODS_PATH] == [None, "next-page"]
