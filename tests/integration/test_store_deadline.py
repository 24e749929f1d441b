"""A request's store calls share one deadline (lscloud.store.s3http.start_deadline, set when the
request starts): a hung store is answered 503 with Retry-After before Knative's timeoutSeconds
(60 s) cuts the caller off. It took 61–64 s: three attempts of 10 s for the PUT, three more for the
read-back settling its unknown outcome.

The store is the real weed, stopped with SIGSTOP: its port still takes connections (the kernel's
backlog) and no answer comes, as in the outage. The calls' attempts are counted on the store's own
connection pool: those, and the deadline held under the platform's 60 s by construction, bound the
time taken; no time is asserted."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid

import pytest

from lscloud import config, runtime
from lscloud.auth import allow
from lscloud.store import StoreUnavailable, s3http
from lscloud.store.objects import ObjectStore
from lscloud.web import create_app

pytestmark = pytest.mark.integration

PLATFORM_TIMEOUT_S = 60   # Knative's timeoutSeconds, and the local gateway's


@contextlib.contextmanager
def hung(server):
    """The store's process stopped: connections are accepted, nothing is answered."""
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(500):   # every thread of it stopped, not only signalled
            if _state(server.proc.pid) == "T":
                break
            time.sleep(0.01)
        yield
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


def _state(pid: int) -> str:
    """The process's state letter in /proc (``T``: stopped)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()[0]


def count_attempts(objects: ObjectStore) -> list[str]:
    """The method of every HTTP attempt ``objects`` makes from now (its real pool, wrapped)."""
    seen: list[str] = []
    pool = objects.http.connections
    real = pool.request

    def counted(method, target, *args, **kwargs):
        seen.append(method)
        return real(method, target, *args, **kwargs)

    pool.request = counted
    return seen


def loaded(settings, **env) -> config.Settings:
    """The test's settings as a process started with ``env`` added to their environment reads them."""
    return config.load({**settings.env_vars(), **env})


@pytest.fixture
def installed():
    def install(s: config.Settings) -> runtime.Runtime:
        runtime.uninstall()
        return runtime.install(runtime.Runtime(s))

    yield install
    runtime.uninstall()


@pytest.fixture
def things(settings, installed):
    """An app whose one route makes a create-only write (a record's first version); the request's
    deadline is 2 s, the store's per-attempt timeout its default 10 s."""
    rt = installed(loaded(settings, LSCLOUD_S3_REQUEST_DEADLINE_S="2"))
    app = create_app("deadline-test", settings=rt.settings)

    @app.post("/v1/things")
    @allow("public")
    def create_thing():
        """Create a thing."""
        rt.objects.put(rt.settings.bucket, f"things/{uuid.uuid4().hex}", b'{"n": 1}',
                       content_type="application/json", if_none_match=True)
        return {"created": True}, 201

    return app.test_client(), rt


def test_a_request_on_a_hung_store_is_answered_503_by_its_deadline(things, s3_server):
    client, rt = things
    assert client.post("/v1/things").status_code == 201   # the store answers: connections are pooled
    attempts = count_attempts(rt.objects)
    with hung(s3_server):
        answer = client.post("/v1/things")

    assert answer.status_code == 503
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.headers.get("Retry-After")
    # one PUT, its 10 s wait cut at the 2 s deadline, which left no time for a second; then the one
    # short read asking whether that PUT landed (it had three attempts of 10 s, and the PUT three)
    assert attempts == ["PUT", "GET"]


def test_past_the_deadline_a_call_sends_nothing_and_settles_nothing(settings, installed, s3_server):
    """A write after the request's deadline has passed is not tried: known not written, it is not
    read back either (a read-back's grace is for a write that may have landed)."""
    rt = installed(settings)
    key = f"things/{uuid.uuid4().hex}"
    attempts = count_attempts(rt.objects)
    token = s3http.start_deadline(1)
    try:
        with hung(s3_server):
            with pytest.raises(StoreUnavailable):
                rt.objects.get(settings.bucket, key)   # waits out the deadline
            tried = len(attempts)
            with pytest.raises(StoreUnavailable) as refused:
                rt.objects.put(settings.bucket, key, b"{}", content_type="application/json", if_none_match=True)
    finally:
        s3http.end_deadline(token)
    assert tried == 1
    assert attempts[tried:] == []
    assert refused.value.__cause__.unsent
    assert s3http.deadline() is None   # ended: what runs next in this thread has no bound


def test_outside_a_request_a_call_keeps_its_attempts_each_of_the_configured_timeout(settings, s3_server):
    """A migration, the CLI, a background thread: no deadline, every call its three attempts, each
    waiting LSCLOUD_S3_TIMEOUT_S."""
    objects = ObjectStore.from_settings(loaded(settings, LSCLOUD_S3_TIMEOUT_S="1"))
    assert objects.http.connections.timeout_s == 1
    objects.ping(settings.bucket)
    attempts = count_attempts(objects)
    with hung(s3_server):
        with pytest.raises(StoreUnavailable):
            objects.get(settings.bucket, "things/none")
    assert attempts == ["GET"] * s3http.MAX_ATTEMPTS


def test_the_default_deadline_ends_a_hung_store_before_the_platform_does():
    """By construction: the request's deadline, then one read-back of READ_BACK_S."""
    defaults = config.Settings()
    assert 0 < defaults.s3_request_deadline_s + s3http.READ_BACK_S < PLATFORM_TIMEOUT_S
    assert config.load({"LSCLOUD_S3_REQUEST_DEADLINE_S": "0"}).s3_request_deadline_s == 0   # no bound
    with pytest.raises(config.ConfigError, match="LSCLOUD_S3_REQUEST_DEADLINE_S"):
        config.load({"LSCLOUD_S3_REQUEST_DEADLINE_S": "90"})
    with pytest.raises(config.ConfigError, match="LSCLOUD_S3_TIMEOUT_S"):
        config.load({"LSCLOUD_S3_TIMEOUT_S": "0"})


def test_a_request_s_deadline_ends_with_its_wsgi_call(settings, installed):
    """A request made in-process from inside another one of the same app (a test's stand-in peer)
    shares the outer one's app context, and so its ``g``: kept there, the inner request's bound
    replaced the outer's, whose teardown then found none to end, and it outlived its request in the
    thread: every later store call of the thread (the next test's fixtures) was refused once it
    passed. Each request's bound is set around its WSGI call instead, and ends with it."""
    rt = installed(loaded(settings, LSCLOUD_S3_REQUEST_DEADLINE_S="2"))
    app = create_app("deadline-test", settings=rt.settings)
    client = app.test_client()

    @app.get("/v1/bounded")
    @allow("public")
    def bounded():
        """Say whether this request is bounded."""
        return {"bounded": s3http.deadline() is not None}

    @app.get("/v1/outer")
    @allow("public")
    def outer():
        """Ask /v1/bounded in-process, then say whether this request is still bounded."""
        inner = client.get("/v1/bounded").get_json()["bounded"]
        return {"inner": inner, "outer": s3http.deadline() is not None}

    assert client.get("/v1/outer").get_json() == {"inner": True, "outer": True}
    assert s3http.deadline() is None   # nothing left bound in this thread


def test_connecting_waits_no_later_than_the_deadline(settings, monkeypatch):
    """A store that does not answer the connection (a dropped SYN) held an attempt for the whole
    per-attempt timeout past the request's deadline: connecting and sending wait no later than it."""
    from lscloud import connections

    asked = []

    def no_answer(address, timeout=None, *args, **kwargs):
        asked.append(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(connections.socket, "create_connection", no_answer)
    pool = connections.Connections("http", "127.0.0.1", 9, timeout_s=10.0)
    with pytest.raises(connections.NotSent):
        pool.send("GET", "/", {"host": "127.0.0.1"}, None, deadline=time.monotonic() + 0.5)
    with pytest.raises(connections.NotSent):
        pool.send("GET", "/", {"host": "127.0.0.1"}, None)
    assert asked[0] <= 0.5 and asked[1] == 10.0
