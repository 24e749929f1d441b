"""Reading a PDF someone sent, in a worker process whose memory and time are bounded.

pyHanko makes a Python object of every number it parses (~150 bytes for each byte of the file or
of a stream it decodes), and its own limits bound decoded bytes, not objects: a 4 KB PDF of
compressed zeros held a replica's CPU for 10 s and grew it by 500 MB on the public verification,
16 KB took 2 GB and 45 s, and a few hundred KB would have had the replica killed. So every parse of
an untrusted PDF (a public verification, an officer's upload) runs here: in one of at most
:data:`WORKERS` processes per replica, each with at most :data:`MEMORY_BYTES` of address space,
each job with at most :data:`JOB_CPU_S` of CPU and :data:`JOB_WALL_S` of waiting. A job past a
bound is refused with :class:`TooCostly` (422 naming the body) and its worker is killed; the next
job starts a fresh one. :data:`DECODE_LIMITS` makes pyHanko stop a bomb early inside the worker.

Workers are spawned (a fresh interpreter: nothing of the replica's threads, locks or sockets, under
uvicorn's threads as under the local cloud's fork server), lazily, and import the package (pyHanko
with it) once. A job is a module-level function and plain arguments (the PDF's bytes, the trust
as DER); its answer is plain data, or the :class:`~lscloud.errors.Invalid` it raised.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import resource
import signal
import threading
from typing import Any, Callable

from pyhanko.pdf_utils.decode_limits import (
    DEFAULT_PURPOSE_LIMITS, DecodeLimits, DecodePurpose, DocumentDecodeBudget, StreamDecodeLimits)

from pyhanko.pdf_utils.misc import PdfError

from lscloud import errors

log = logging.getLogger("documents.pdf_worker")
MiB = 1024 * 1024

WORKERS = 2
"""PDFs read at once in a replica (photos are decoded one at a time, :mod:`lscloud.images`, whose
memory per decode is larger): a replica has one CPU (its container 1280 MiB: func.yaml); the others wait their turn, up to :data:`WAIT_S`."""
MEMORY_BYTES = 512 * MiB
"""A worker's address space (RLIMIT_AS). A fresh worker with the package takes ~93 MiB of it (73
resident); verifying a signed document as large as an upload may be (19.8 MiB: a 19.6 MiB
incompressible attachment, three B-LTA signatures) peaked at 141 MiB of address space (122
resident), its bytes received over the pipe included: measured with /proc/self/status's VmPeak
and VmHWM, pyHanko 0.38. A PDF that needs more than the limit gets a MemoryError in the worker,
not a replica grown until the kernel kills it."""
JOB_CPU_S = 10
"""CPU seconds for one PDF (RLIMIT_CPU, reset at each job): a signed document's report takes well
under one. Past it the kernel ends the worker (SIGXCPU)."""
JOB_WALL_S = 30.0
"""How long a job's answer is waited for, whatever stalls it (a starved or stuck worker)."""
WAIT_S = 20.0
"""How long a request waits for a free worker before a 503 (wait + job stay within a gateway's 60 s)."""
START_S = 60.0
"""How long a new worker may take to import the package (a loaded machine, at a cold start)."""
KEEP_BYTES = 192 * MiB
"""A worker whose resident memory is past this after a job ends (~100 MiB when it starts): two
workers holding what a costly file left would be most of a replica's memory."""

DECODE_LIMITS = DecodeLimits(
    # pyHanko's defaults let an object stream decode to 4 MiB at any ratio and the document to 256
    # MiB: ~600 MB of objects per stream. An object stream of a real document is tens of KB
    per_stream=StreamDecodeLimits(max_output_size=64 * MiB),
    per_purpose={**DEFAULT_PURPOSE_LIMITS,
                 DecodePurpose.OBJECT_STREAM: StreamDecodeLimits(max_ratio=100, ratio_floor=MiB,
                                                                 max_output_size=16 * MiB)},
    document_budget=DocumentDecodeBudget(base_allowance=64 * MiB, max_ratio=20))
"""What pyHanko may decode from an untrusted PDF (``decode_limits=`` of its reader)."""


UNREADABLE = (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError, AssertionError)
"""What pyHanko raises on a file it cannot read (it asserts a catalog is a dictionary, recurses into
nested arrays, finds no /Root): a caller's odd PDF, never a 500."""


class TooCostly(errors.Invalid):
    type = "pdf-too-costly"
    title, title_vi = "The PDF costs too much to read", "Tệp PDF quá nặng để đọc"


def too_costly(why: str) -> TooCostly:
    return TooCostly.at("", f"the PDF needs more memory or time to read than this service gives one file ({why})",
                        "Tệp PDF cần nhiều bộ nhớ hoặc thời gian để đọc hơn mức dịch vụ dành cho một tệp.")


def weigh(reader, most: int) -> int:
    """How many PDF objects (numbers, names, strings, arrays, dictionaries: streams' contents aside)
    reading every object of ``reader``'s current revision makes: :class:`TooCostly` past ``most``.
    In a worker, for a file the replica will read itself later. An object that cannot be read is
    passed over, as a reader of what it needs would never meet it."""
    from pyhanko.pdf_utils.misc import PdfDecodeLimitError

    refs = set()
    for revision in range(reader.xrefs.total_revisions):
        refs |= reader.xrefs.explicit_refs_in_revision(revision)
    count = 0
    for ref in refs:
        try:
            stack = [reader.get_object(ref)]
        except PdfDecodeLimitError:
            raise too_costly("a stream decodes to more than this service reads") from None
        except UNREADABLE:
            continue
        while stack:   # a dictionary's values are as read: a reference is not followed (it is in refs)
            obj = stack.pop()
            count += 1
            if count > most:
                raise too_costly(f"more than {most} objects")
            if isinstance(obj, dict):
                stack.extend(obj.values())
            elif isinstance(obj, list):
                stack.extend(obj)
    return count


# -- the worker's side --------------------------------------------------------------------------------

def _bound(memory_bytes: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        memory_bytes = min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))   # SIGXCPU dumps core by default: no file of a PDF
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # a Ctrl-C is the replica's; EOF ends the worker
    try:   # should the container's memory run out anyway, the kernel ends a worker, not the replica
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def _cpu_bound(cpu_s: int | None) -> None:
    """RLIMIT_CPU counts the process's whole life: ``cpu_s`` more from now, or none (between jobs)."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = hard
    if cpu_s is not None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(usage.ru_utime + usage.ru_stime) + 1 + cpu_s
        soft = soft if hard == resource.RLIM_INFINITY else min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _answer(fn: Callable, args: tuple, cpu_s: int) -> tuple:
    _cpu_bound(cpu_s)
    try:
        return ("ok", fn(*args))
    except MemoryError:
        return ("costly", "memory")
    except errors.DomainError as exc:
        return ("refused", type(exc).__module__, type(exc).__qualname__, exc.detail, exc.detail_vi, exc.errors)
    except Exception as exc:  # noqa: BLE001 - what would have been a 500 in the replica stays one there
        log.exception("a PDF job failed")
        return ("failed", type(exc).__name__)
    finally:
        _cpu_bound(None)


def _resident() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _serve(conn, memory_bytes: int) -> None:
    """A worker: jobs in turn, each answered as ``(reply, retiring)``, until the replica closes the
    pipe, or a job was too costly or left the heap past :data:`KEEP_BYTES` (Python keeps what it
    freed for reuse: a fresh worker takes over)."""
    _bound(memory_bytes)
    conn.send((("ready", os.getpid()), False))
    while True:
        try:
            fn, args, cpu_s = conn.recv()
        except (EOFError, OSError):
            return
        except Exception as exc:  # noqa: BLE001 - a job this worker cannot unpickle is the replica's bug
            conn.send((("failed", type(exc).__name__), False))
            continue
        reply = _answer(fn, args, cpu_s)
        retiring = reply[0] == "costly" or _resident() > KEEP_BYTES
        conn.send((reply, retiring))
        if retiring:
            return


# -- the replica's side -------------------------------------------------------------------------------

class _Gone(Exception):
    """The worker ended or did not answer in time."""


class _Worker:
    _starting = threading.Lock()   # Process.start() walks multiprocessing's set of children: one at a time

    def __init__(self, memory_bytes: int):
        ctx = multiprocessing.get_context("spawn")
        self.conn, theirs = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_serve, args=(theirs, memory_bytes), name="documents-pdf-worker",
                                   daemon=True)
        with self._starting:
            self.process.start()
        theirs.close()

    def ready(self, timeout: float) -> None:
        if self.ask_reply(timeout)[0][0] != "ready":
            raise _Gone("no ready message")

    def ask_reply(self, timeout: float) -> tuple:
        try:
            if not self.conn.poll(timeout):
                raise _Gone(f"no answer within {timeout:g} s")
            return self.conn.recv()
        except (EOFError, OSError):   # the kernel ended it: its CPU time, or the container's memory
            raise _Gone("the reader was ended at a limit") from None

    def ask(self, job: tuple, timeout: float) -> tuple:
        try:
            self.conn.send(job)
        except OSError:
            raise _Gone("the reader was ended at a limit") from None
        return self.ask_reply(timeout)

    def alive(self) -> bool:
        return self.process.is_alive()

    def stop(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)


class Pool:
    """At most ``workers`` worker processes, started as jobs need them; see the module's docstring."""

    def __init__(self, workers: int = WORKERS, *, memory_bytes: int = MEMORY_BYTES, cpu_s: int = JOB_CPU_S,
                 wall_s: float = JOB_WALL_S, wait_s: float = WAIT_S, start_s: float = START_S):
        self.memory_bytes, self.cpu_s, self.wall_s, self.wait_s, self.start_s = \
            memory_bytes, cpu_s, wall_s, wait_s, start_s
        self._slots = threading.BoundedSemaphore(workers)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.stop()
        worker = None
        try:
            worker = _Worker(self.memory_bytes)
            worker.ready(self.start_s)
        except (_Gone, OSError) as exc:
            if worker is not None:
                worker.stop()
            log.error("a PDF worker did not start: %s", exc)
            raise errors.Unavailable("the PDF reader could not be started: send it again in a moment",
                                     detail_vi="Chưa khởi động được bộ đọc PDF: vui lòng gửi lại sau giây lát.",
                                     retry_after_s=5) from None
        return worker

    def run(self, fn: Callable, *args: Any) -> Any:
        """``fn(*args)`` in a worker: its answer; the :class:`~lscloud.errors.DomainError` it raised;
        :class:`TooCostly` past a bound; :class:`~lscloud.errors.Unavailable` when no worker
        is free within :data:`WAIT_S`."""
        if not self._slots.acquire(timeout=self.wait_s):
            raise errors.Unavailable("too many PDFs are being read: send it again in a moment",
                                     detail_vi="Đang đọc nhiều tệp PDF: vui lòng gửi lại sau giây lát.", retry_after_s=5)
        worker = None
        try:
            worker = self._take()
            try:
                reply, retiring = worker.ask((fn, args, self.cpu_s), self.wall_s)
            except _Gone as exc:
                log.warning("a PDF job was stopped: %s", exc)
                worker.stop()
                worker = None
                raise too_costly(str(exc)) from None
            if retiring:
                worker.stop()
                worker = None
            if reply[0] == "costly":
                raise too_costly(f"out of {reply[1]}")
            return _result(reply)
        finally:
            if worker is not None:
                with self._lock:
                    self._idle.append(worker)
            self._slots.release()

    def stop(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


def _result(reply: tuple) -> Any:
    kind = reply[0]
    if kind == "ok":
        return reply[1]
    if kind == "refused":
        _, module, name, detail, detail_vi, fields = reply
        cls = getattr(importlib.import_module(module), name, None)
        if not (isinstance(cls, type) and issubclass(cls, errors.DomainError)):
            cls = errors.Invalid
        raise cls(detail, detail_vi=detail_vi, errors=fields)
    raise RuntimeError(f"a PDF job failed in its worker: {reply[1]}")


POOL = Pool()
"""The replica's pool (workers are started by the first jobs)."""


def run(fn: Callable, *args: Any) -> Any:
    """``fn(*args)`` in one of :data:`POOL`'s workers (:meth:`Pool.run`)."""
    return POOL.run(fn, *args)
