"""Function processes for `lscloud up`, forked from one interpreter that imported the runtime once.

Every function process imports the same ~700 ms of CPU before it does anything of its own:
uvicorn and func-python's binding, Flask, the OpenTelemetry SDK, the S3 client, jsonschema and the runtime around
them. `lscloud up` starts fourteen at once on a machine with two cores, so those imports were most
of its wait. The supervisor starts this server first (beside nats-server and weed mini); it imports
that common part once (:data:`PRELOAD`) and then forks each function process from itself, which
imports only its own package and starts.

What a forked process runs is what ``python -m lscloud.serve [--run-hooks REPORT] DIR`` runs
(:func:`lscloud.serve.main`), in its own session, with its own environment, working directory and
log, exactly as the spawned one had: nothing of the function runs before the fork, and nothing the
preloaded modules read from the environment at import matters to a function (its settings are read
in ``start(cfg)`` from the environment it was given). A cold start measured by
`lscloud bench coldstart` is still a fresh interpreter: this is the local cloud's way to start many
at once, as the cluster's image would have its bytecode.

The supervisor stays each process's parent, so it waits on them and reports their exit codes as
before: it makes itself a child subreaper (Linux ``PR_SET_CHILD_SUBREAPER``), and this server forks
twice, so the function process is re-parented to the supervisor as soon as the middle process
exits. Where that is not available, or the server is gone, the supervisor spawns as before.

Nothing outlives a supervisor killed outright (kill -9): the server asks the kernel for a SIGTERM
when the supervisor dies (``PR_SET_PDEATHSIG``, :func:`lscloud.local.processes.die_with_parent`), and
so does each function process, once it is the supervisor's child (asked while the middle process
was its parent, the signal would come as that one exits).

Protocol, one JSON line each way on two pipes: ``{"args", "env", "cwd", "log"}`` →
``{"pid"}`` or ``{"error"}``.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .processes import die_with_parent, kill_group, parent_death_preexec, process_create_time

PRELOAD = (
    # what every function imports before it is ready (python -X importtime of a function's start)
    "lscloud.function_server", "uvicorn", "uvicorn.protocols.http.httptools_impl", "uvicorn.lifespan.on",
    "func_python.sock", "lscloud.serve", "lscloud.loading", "lscloud.knative", "lscloud.telemetry",
    "lscloud.runtime", "lscloud.store.objects", "lscloud.listing", "lscloud.validation", "lscloud.reference",
    "lscloud.aggregate", "lscloud.idempotency", "lscloud.wsgi_bridge", "jsonschema", "yaml",
    "opentelemetry.sdk.trace", "opentelemetry.sdk.metrics", "lscloud.web.instrumentation",
    "lscloud.store.s3http", "httptools",
    # what most functions' apps import as they are built: the peers' client
    "lscloud.peers", "lscloud.http_client",
)
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NAME = 15
SPAWN_TIMEOUT_S = 120.0  # the first request waits for the imports, on a loaded machine


def become_subreaper() -> bool:
    """Make this process the parent of any orphaned descendant (Linux); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class Adopted:
    """A function process the supervisor adopted (a child by re-parenting, not by its own fork),
    with the part of :class:`subprocess.Popen` the supervisor uses: ``pid``, ``poll()``,
    ``wait(timeout)`` and ``returncode`` (negative: the signal that ended it)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere, or never ours: gone either way
                self.returncode = -signal.SIGKILL if not _exists(self.pid) else None
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.005
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return self.returncode


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class ForkServer:
    """The supervisor's end: start the server, ask it for processes, stop it."""

    def __init__(self, env: dict[str, str], log_path: Path, cwd: Path):
        self.env, self.log_path, self.cwd = env, log_path, cwd
        self.proc: subprocess.Popen | None = None
        self.create_time: float | None = None
        self._lock = threading.Lock()
        self._to = self._from = None
        self._buffer = b""

    def start(self) -> "ForkServer":
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "lscloud.local.forkserver", str(req_r), str(rep_w),
                                          str(os.getpid())],
                                         env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         pass_fds=(req_r, rep_w), start_new_session=True, cwd=str(self.cwd),
                                         preexec_fn=parent_death_preexec())
        os.close(req_r)
        os.close(rep_w)
        self._to, self._from = req_w, rep_r
        self.create_time = process_create_time(self.proc.pid)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def spawn(self, args: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> Adopted:
        """A process running ``lscloud.serve.main(args)``; raises OSError when the server cannot."""
        with self._lock:
            if self.proc is None or self.proc.poll() is not None or self._to is None:
                raise OSError("the fork server is not running")
            line = json.dumps({"args": list(args), "env": env, "cwd": str(cwd), "log": str(log_path)}) + "\n"
            os.write(self._to, line.encode())  # well under the pipe buffer per request
            try:
                reply = self._read_line(SPAWN_TIMEOUT_S)
            except OSError:
                # a reply still to come would be read as the next request's: no next request
                self.stop()
                raise
        answer = json.loads(reply)
        if "pid" not in answer:
            raise OSError(f"the fork server could not start a process: {answer.get('error')}")
        return Adopted(int(answer["pid"]))

    def _read_line(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise OSError("the fork server did not answer")
            ready, _, _ = select.select([self._from], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self._from, 65536)
                if not chunk:
                    raise OSError("the fork server closed its pipe")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def stop(self) -> None:
        for fd in (self._to, self._from):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to = self._from = None
        if self.proc is not None and self.proc.poll() is None:
            kill_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                kill_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


# -- the server's side ------------------------------------------------------------------------------

def _preload() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - the function's own import reports it
            print(f"forkserver: preloading {name} failed: {exc.__class__.__name__}: {exc}", flush=True)


def _run_child(request: dict, fds: tuple[int, ...], supervisor: int | None, middle: int) -> None:
    """In the forked function process: become what ``python -m lscloud.serve ...`` would be; never returns."""
    code = 1
    try:
        os.setsid()
        for fd in fds:
            os.close(fd)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _die_with(supervisor, middle)
        os.chdir(request["cwd"])
        _name(f"fn:{Path(request['cwd']).name}")
        from lscloud import config

        config.replace_environ(request["env"])
        sys.path[0] = request["cwd"]  # as `python -m` puts the working directory first
        sys.argv = ["-m", *request["args"]]
        from lscloud import serve

        code = serve.main(request["args"])
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - as the interpreter would: the traceback, exit 1
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()  # e.g. the span processor's flush, as at a normal exit
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 1)


def _die_with(supervisor: int | None, middle: int) -> None:
    """Tie this function process to the supervisor, once it has been re-parented to it."""
    if supervisor is None:
        return
    while os.getppid() == middle:  # it exits as soon as it has written our pid
        time.sleep(0.001)
    if os.getppid() == supervisor:
        die_with_parent(supervisor)
    elif not _exists(supervisor):
        raise SystemExit(f"forkserver: the supervisor (pid {supervisor}) is gone; not starting")
    # else a caller that is no subreaper (tests): the process is not its child to tie to


def _name(name: str) -> None:
    """The process's short name (what ``ps -o comm``, ``top`` and psutil's ``name()`` show; Linux):
    its command line is still the fork server's."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _fork(request: dict, fds: tuple[int, ...], supervisor: int | None) -> int:
    """Fork twice: the function process's parent exits at once, so it is re-parented to the
    supervisor (the subreaper). Returns the function process's pid."""
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        try:
            os.close(r)
            me = os.getpid()
            pid = os.fork()
            if pid == 0:
                os.close(w)
                _run_child(request, fds, supervisor, me)
            os.write(w, str(pid).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 64):
        data += chunk
    os.close(r)
    os.waitpid(middle, 0)
    return int(data)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    req_r, rep_w = int(argv[0]), int(argv[1])
    supervisor = int(argv[2]) if len(argv) > 2 else None
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops it (its own session anyway)
    from lscloud.serve import importing

    # what was imported stays for the life of every process forked from here: imported with the
    # collector off (~15% faster), then frozen out of its way, so a collection in a function process
    # neither walks it nor copies its pages
    with importing():
        _preload()
    requests = os.fdopen(req_r, "rb", buffering=0)
    buffer = b""
    while True:
        chunk = requests.read(65536)
        if not chunk:
            return 0  # the supervisor closed the pipe: nothing more to start
        buffer += chunk
        while b"\n" in buffer:
            line, _, buffer = buffer.partition(b"\n")
            try:
                answer = {"pid": _fork(json.loads(line), (req_r, rep_w), supervisor)}
            except Exception as exc:  # noqa: BLE001 - reported to the supervisor, which spawns instead
                answer = {"error": f"{exc.__class__.__name__}: {exc}"}
            os.write(rep_w, (json.dumps(answer) + "\n").encode())


if __name__ == "__main__":
    sys.exit(main())
