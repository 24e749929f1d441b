"""Documents: a small PynamoDB-style ``Model`` over S3, with optimistic concurrency.

One item is one JSON object at ``<table>/<enc(hash)>/<enc(range) or "_">.json`` (see
:mod:`lscloud.store.keys` for the encoding and the resulting sort order). Writes are conditional:
a new item is written create-only (``If-None-Match: *``), an item read from the store is written
back only if it is unchanged (``If-Match: <etag it was read with>``); losing either race raises
:class:`~lscloud.store.errors.ConditionalCheckFailed` instead of overwriting someone else's write.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from . import errors, keys, working
from .attributes import Attribute, PseudonymAttribute, TTLAttribute, VersionAttribute
from .objects import ObjectInfo

M = TypeVar("M", bound="Model")

_MISSING: Any = object()
_FETCH_WORKERS = 8
_FETCH_BATCH = 64
_RESERVED = frozenset({"save", "delete", "delete_later", "batch_delete", "refresh", "get", "exists", "update",
                       "query", "scan", "count",
                       "to_dict", "from_dict", "etag", "DoesNotExist", "Meta"})

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _fetch_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=_FETCH_WORKERS, thread_name_prefix="lscloud-store-get")
    return _pool


class ResultPage(Sequence[M]):
    """One page of a query or scan: a sequence of items plus the token of the next page."""

    def __init__(self, items: list[M], page_token: str | None):
        self.items = items
        #: opaque, URL-safe; pass it back to get the next page; None when this is the last page
        self.page_token = page_token

    def __getitem__(self, index):
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[M]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"ResultPage({len(self.items)} items, page_token={self.page_token!r})"


class _ModelMeta(type):
    """Collects the attributes, checks the key schema and gives each model its own DoesNotExist."""

    def __new__(mcls, name, bases, namespace):
        cls = super().__new__(mcls, name, bases, namespace)
        attributes: dict[str, Attribute] = {}
        for base in reversed(cls.__mro__[1:]):
            attributes.update(getattr(base, "_attributes", {}))
        for attr_name, value in namespace.items():
            if isinstance(value, Attribute):
                if attr_name in _RESERVED or attr_name.startswith("_"):
                    raise TypeError(f"{name}.{attr_name}: that name is reserved by Model")
                attributes[attr_name] = value
        cls._attributes = attributes

        if "DoesNotExist" not in namespace:
            parents = tuple(b.DoesNotExist for b in bases if isinstance(b, _ModelMeta)) or (errors.DoesNotExist,)
            cls.DoesNotExist = type("DoesNotExist", parents, {
                "__module__": cls.__module__, "__qualname__": f"{cls.__qualname__}.DoesNotExist",
                "__doc__": f"No {name} item at that key."})

        meta = getattr(cls, "Meta", None)
        cls._table = None
        if meta is None:
            return cls  # an abstract base (Model itself, or a mixin of shared attributes)
        cls._table = keys.validate_table(getattr(meta, "table", None))
        cls._bucket = getattr(meta, "bucket", None)
        cls._reference = bool(getattr(meta, "reference", False))
        hashes = [a for a in attributes.values() if a.is_hash_key]
        ranges = [a for a in attributes.values() if a.is_range_key]
        versions = [a for a in attributes.values() if isinstance(a, VersionAttribute)]
        ttls = [a for a in attributes.values() if isinstance(a, TTLAttribute)]
        if len(hashes) != 1:
            raise TypeError(f"{name} needs exactly one hash_key attribute, has {len(hashes)}")
        if len(ranges) > 1 or len(versions) > 1 or len(ttls) > 1:
            raise TypeError(f"{name} may have at most one range key, one VersionAttribute and one TTLAttribute")
        cls._hash_attr = hashes[0]
        if isinstance(cls._hash_attr, PseudonymAttribute) and not cls._hash_attr.purpose:
            cls._hash_attr.purpose = cls._table  # one index, one purpose: unlinkable across tables
        cls._range_attr = ranges[0] if ranges else None
        cls._version_attr = versions[0] if versions else None
        cls._ttl_attr = ttls[0] if ttls else None
        if cls._ttl_attr is not None:
            from .. import runonce

            runonce.register_model(cls)   # expired items are deleted by the runtime's sweep
        if cls._ttl_attr is not None or getattr(meta, "working", False):
            working.declare(keys.table_prefix(cls._table))   # not a record: see lscloud.store.working
        return cls


def _no_constant(name: str):
    """``json.loads``'s hook for NaN and Infinity, which Python reads but no JSON has (we never write them)."""
    raise ValueError(f"{name} is not JSON")


class Model(metaclass=_ModelMeta):
    """Base of every document model. Subclasses declare ``class Meta: table = "..."`` and attributes.

    ``Model(hash_key, range_key, **attributes)`` builds an unsaved item (positional keys are
    optional; unknown keywords raise TypeError). Its first ``save()`` is create-only.

    ``Meta`` may also say ``bucket = "..."`` (another bucket than the function's), ``reference =
    True`` (read through the reference cache, :meth:`get`) and ``working = True``: its items are
    machinery kept only while they serve, never records, so a bucket under object lock retains
    their versions a day, not for its default retention (:mod:`lscloud.store.working`; a model with
    a TTL is working too).

    A document read from the store keeps, on its next write, the attributes this model does not
    declare (those of a newer revision's model: an older replica must not drop them). So an
    attribute dropped from a model for good (personal data no longer kept) stays in the documents
    that had it until a migration removes it, or the model declares it and writes None.
    """

    _attributes: dict[str, Attribute] = {}
    _table: str | None = None
    _bucket: str | None = None
    _hash_attr: Attribute
    _range_attr: Attribute | None = None
    _version_attr: VersionAttribute | None = None
    _ttl_attr: TTLAttribute | None = None
    _reference = False
    _kept: dict[str, Any] | None = None   # what a stored document held beyond the declared attributes
    DoesNotExist: type[errors.DoesNotExist] = errors.DoesNotExist

    def __init__(self, hash_key: Any = _MISSING, range_key: Any = _MISSING, /, **attributes: Any):
        self._values: dict[str, Any] = {}
        self._etag: str | None = None
        self._loaded_key: str | None = None
        cls = type(self)
        unknown = sorted(set(attributes) - set(cls._attributes))
        if unknown:
            raise TypeError(f"{cls.__name__} has no attribute(s) {', '.join(unknown)}")
        for value, attr, what in ((hash_key, getattr(cls, "_hash_attr", None), "hash"),
                                  (range_key, cls._range_attr, "range")):
            if value is _MISSING:
                continue
            if attr is None:
                raise TypeError(f"{cls.__name__} has no {what} key")
            if attr.name in attributes:
                raise TypeError(f"{cls.__name__}: {what} key given twice ({attr.name})")
            attributes[attr.name] = value
        for name, attr in cls._attributes.items():
            if name in attributes:
                setattr(self, name, attributes[name])
            else:
                self._values[name] = attr.default()

    # -- plumbing ----------------------------------------------------------------------------------

    @classmethod
    def _concrete(cls) -> str:
        if cls._table is None:
            raise TypeError(f"{cls.__name__} has no Meta.table; it cannot be stored")
        return cls._table

    @classmethod
    def _conn(cls):
        from . import connection

        objects, default_bucket = connection()
        return objects, cls._bucket or default_bucket

    @classmethod
    def _key_string(cls, attr: Attribute, value: Any) -> str:
        try:
            return attr.key_string(attr.validate(value))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, errors.InvalidKey):
                raise
            raise errors.InvalidKey(str(exc)) from None

    @classmethod
    def _key_for(cls, hash_key: Any, range_key: Any = None) -> str:
        table = cls._concrete()
        if hash_key is None:
            raise errors.InvalidKey(f"{cls.__name__}: hash key is required")
        hash_str = cls._key_string(cls._hash_attr, hash_key)
        if cls._range_attr is None:
            if range_key is not None:
                raise errors.InvalidKey(f"{cls.__name__} has no range key")
            return keys.object_key(table, hash_str)
        if range_key is None:
            raise errors.InvalidKey(f"{cls.__name__}: range key is required")
        return keys.object_key(table, hash_str, cls._key_string(cls._range_attr, range_key))

    def _key(self) -> str:
        cls = type(self)
        range_value = self._values.get(cls._range_attr.name) if cls._range_attr else None
        return cls._key_for(self._values.get(cls._hash_attr.name), range_value)

    @classmethod
    def _key_re(cls):
        return keys.item_key_re(cls._concrete(), with_range=cls._range_attr is not None)

    def _expired(self) -> bool:
        ttl = type(self)._ttl_attr
        return ttl is not None and ttl.expired(self._values.get(ttl.name))

    @classmethod
    def _build(cls: type[M], data: Any, *, etag: str | None, key: str | None, parsed: bool = False) -> M:
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}.from_dict needs a dict, got {type(data).__name__}")
        item = cls.__new__(cls)
        item._values = {}
        item._etag = etag
        item._loaded_key = key
        # unknown keys do not stop a load, so documents written by a newer model version still load
        found = 0
        for name, attr in cls._attributes.items():
            if name not in data:
                item._values[name] = attr.default()
                continue
            found += 1
            if data[name] is None:
                item._values[name] = None
            else:
                item._values[name] = attr.from_parsed(data[name]) if parsed else attr.deserialize(data[name])
        if parsed and found < len(data):
            # and a stored one's are written back as they were: a replica of an older revision (a
            # rolling deploy, a rollback) that updates a newer one's document must not drop what it
            # does not know (a create's request stamp, a move's record)
            item._kept = {k: v for k, v in data.items() if k not in cls._attributes}
        return item

    @classmethod
    def _parse(cls: type[M], body: bytes, etag: str, key: str) -> M:
        try:
            return cls._build(json.loads(body, parse_constant=_no_constant), etag=etag, key=key, parsed=True)
        except (TypeError, ValueError) as exc:
            raise errors.StoreError(f"corrupt {cls.__name__} document at {key}: {exc}", cause="corrupt",
                                    key=key) from exc

    @classmethod
    def _load(cls: type[M], key: str, *, reference: bool = False, conn=None) -> M | None:
        """The live item at ``key``, or None if there is none or it has expired. ``reference``: read
        through the store's reference cache (``Meta.reference``); each call parses its own item, so
        a caller may change it without touching what the next request reads. ``conn``: the
        ``(store, bucket)`` to read from, resolved by a caller in another thread."""
        objects, bucket = conn or cls._conn()
        try:
            stored = objects.get_reference(bucket, key) if reference else objects.get(bucket, key)
        except errors.DoesNotExist:
            return None
        item = cls._parse(stored.body, stored.etag, key)
        return None if item._expired() else item

    @classmethod
    def _load_many(cls: type[M], item_keys: list[str]) -> list[M | None]:
        if len(item_keys) <= 1:
            return [cls._load(k) for k in item_keys]
        # the caller's connection: a pool thread does not see a store.using() block of the caller's
        conn = cls._conn()
        return list(_fetch_pool().map(lambda k: cls._load(k, conn=conn), item_keys))  # map keeps the order

    def _body(self) -> bytes:
        out = self._serialized()
        if self._kept:
            out = {**self._kept, **out}
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                          allow_nan=False).encode("utf-8")

    def _serialized(self) -> dict[str, Any]:
        out = {}
        for name, attr in type(self)._attributes.items():
            value = self._values.get(name)
            out[name] = None if value is None else attr.serialize(value)
        return out

    # -- public: items -----------------------------------------------------------------------------

    @property
    def etag(self) -> str | None:
        """The S3 ETag this item was last read or written with; None for an unsaved item."""
        return self._etag

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy of every attribute (null ones as None), as stored."""
        return copy.deepcopy(self._serialized())

    @classmethod
    def from_dict(cls: type[M], data: dict[str, Any]) -> M:
        """An unsaved item from a ``to_dict()``-shaped dict (unknown keys ignored, values validated)."""
        return cls._build(data, etag=None, key=None)

    def save(self: M, *, overwrite: bool = False) -> M:
        """Write the item; returns it with its new ``etag`` (and version).

        An item not read from the store is created only if its key is free; an item read from
        the store is replaced only if nobody wrote it since. Either lost race raises
        ConditionalCheckFailed (cause ``conditional_check_failed``). ``overwrite=True`` writes
        unconditionally: for seeding and migrations, never for concurrent writers.
        """
        cls = type(self)
        cls._concrete()
        for name, attr in cls._attributes.items():
            if not attr.null and self._values.get(name) is None and attr is not cls._version_attr:
                raise ValueError(f"{cls.__name__}.{name} is required (null=False) but is not set")
        key = self._key()
        if self._loaded_key is not None and key != self._loaded_key and not overwrite:
            raise errors.InvalidKey(f"{cls.__name__}: the key of a stored item cannot change; create a new item",
                                    cause="key_changed", key=key)
        objects, bucket = cls._conn()
        version = cls._version_attr
        old_version = self._values.get(version.name) if version else None
        if version:
            self._values[version.name] = (old_version or 0) + 1
        try:
            body = self._body()
            if overwrite:
                etag = objects.put(bucket, key, body)
            elif self._etag is None or self._loaded_key is None:
                etag = self._create(objects, bucket, key, body)
            else:
                try:
                    etag = objects.put(bucket, key, body, if_match=self._etag)
                except errors.DoesNotExist as exc:  # deleted since read: also a lost race
                    raise errors.ConditionalCheckFailed(f"{cls.__name__} at {key} was deleted since it was read",
                                                        key=key) from exc
                except errors.ConditionalCheckFailed as exc:
                    raise errors.ConditionalCheckFailed(f"{cls.__name__} at {key} changed since it was read",
                                                        key=key) from exc
        except BaseException:
            if version:
                self._values[version.name] = old_version
            raise
        self._etag = etag
        self._loaded_key = key
        return self

    def _create(self, objects, bucket: str, key: str, body: bytes) -> str:
        cls = type(self)
        try:
            return objects.put(bucket, key, body, if_none_match=True)
        except errors.ConditionalCheckFailed as exc:
            conflict = errors.ConditionalCheckFailed(f"{cls.__name__} at {key} already exists", key=key)
            if cls._ttl_attr is None:
                raise conflict from exc
        # an expired item counts as missing, so it may be replaced -- but only that exact version
        try:
            stored = objects.get(bucket, key)
        except errors.DoesNotExist:
            raise conflict from None
        if not cls._parse(stored.body, stored.etag, key)._expired():
            raise conflict
        try:
            return objects.put(bucket, key, body, if_match=stored.etag)
        except (errors.ConditionalCheckFailed, errors.DoesNotExist) as exc:
            raise conflict from exc

    def delete(self) -> None:
        """Delete the item; if it was read from the store, only if unchanged since (else ConditionalCheckFailed)."""
        cls = type(self)
        key = self._loaded_key or self._key()
        objects, bucket = cls._conn()
        try:
            objects.delete(bucket, key, if_match=self._etag if self._loaded_key else None)
        except errors.DoesNotExist as exc:
            raise cls.DoesNotExist(f"no {cls.__name__} at {key}", key=key) from exc
        except errors.ConditionalCheckFailed as exc:
            raise errors.ConditionalCheckFailed(f"{cls.__name__} at {key} changed since it was read",
                                                key=key) from exc
        self._etag = None
        self._loaded_key = None

    def delete_later(self, *, conn=None) -> Future:
        """Delete the item soon, unconditionally, batched with the other deletes of this process
        (:meth:`lscloud.store.objects.ObjectStore.delete_later`: one ``DeleteObjects`` for up to a
        hundred, sent from a background thread), not waited for: for machinery whose leftover is
        harmless (some repair deletes it too). The future ends once its batch was sent. ``conn``:
        the ``(store, bucket)`` resolved by a caller in another thread."""
        objects, bucket = conn or type(self)._conn()
        return objects.delete_later(bucket, self._loaded_key or self._key())

    @classmethod
    def batch_delete(cls: type[M], items: Iterable[M]) -> list[M]:
        """Delete ``items`` now, unconditionally (as PynamoDB's ``batch_write`` deletes), in
        ``DeleteObjects`` requests of up to a thousand keys; returns those the store did not delete."""
        by_key = {item._loaded_key or item._key(): item for item in items}
        if not by_key:
            return []
        objects, bucket = cls._conn()
        return [by_key[k] for k in objects.delete_many(bucket, by_key) if k in by_key]

    def refresh(self) -> None:
        """Re-read the item from the store (raises DoesNotExist if it is gone or expired)."""
        cls = type(self)
        key = self._loaded_key or self._key()
        fresh = cls._load(key)
        if fresh is None:
            raise cls.DoesNotExist(f"no {cls.__name__} at {key}", key=key)
        self._values, self._etag, self._loaded_key = fresh._values, fresh._etag, key

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._values == self._values  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        cls = type(self)
        hash_value = self._values.get(cls._hash_attr.name) if cls._table else None
        if cls._table and isinstance(cls._hash_attr, PseudonymAttribute) and hash_value is not None:
            hash_value = "~" + cls._hash_attr.key_string(hash_value)  # a repr ends up in logs
        parts = [f"{cls._hash_attr.name}={hash_value!r}"] if cls._table else []
        if cls._range_attr:
            parts.append(f"{cls._range_attr.name}={self._values.get(cls._range_attr.name)!r}")
        return f"{cls.__name__}({', '.join(parts)})"

    # -- public: by key ----------------------------------------------------------------------------

    @classmethod
    def get(cls: type[M], hash_key: Any, range_key: Any = None) -> M:
        """The item at that key; raises ``cls.DoesNotExist`` if there is none (or it has expired).

        A model whose ``Meta`` says ``reference = True`` (data read on every request and changed
        rarely: the directory's units, a catalogue) is read through the store's reference cache:
        from memory for at most ``LSCLOUD_PEER_FRESH_S`` seconds, then revalidated by ETag
        (:meth:`lscloud.store.objects.ObjectStore.get_reference`). A write in this process is read
        back at once; another replica's within that bound. ``update`` and ``refresh`` always read
        the store, so a read-modify-write never starts from a stale copy.
        """
        key = cls._key_for(hash_key, range_key)
        item = cls._load(key, reference=cls._reference)
        if item is None:
            raise cls.DoesNotExist(f"no {cls.__name__} at {key}", key=key)
        return item

    @classmethod
    def located(cls, hash_key: Any, range_key: Any = None) -> tuple[str, str]:
        """``(bucket, key)`` of the item at that key: what :meth:`ObjectStore.ahead` sends a GET of,
        for a :meth:`get` to take later (not for a reference model, read through its cache)."""
        return cls._conn()[1], cls._key_for(hash_key, range_key)

    @classmethod
    def exists(cls, hash_key: Any, range_key: Any = None) -> bool:
        """Whether a live item is at that key."""
        key = cls._key_for(hash_key, range_key)
        if cls._ttl_attr is not None:
            return cls._load(key) is not None
        objects, bucket = cls._conn()
        try:
            objects.head(bucket, key)
        except errors.DoesNotExist:
            return False
        return True

    @classmethod
    def update(cls: type[M], hash_key: Any, range_key: Any, fn: Callable[[M], Any], retries: int | None = None) -> M:
        """Read-modify-write: ``fn(item)`` mutates a fresh read, which is saved under If-Match.

        On a conflict the item is re-read and ``fn`` runs again (so it must be safe to repeat),
        under the project's retry policy (:data:`lscloud.store.retry.DEFAULT`; ``retries``
        overrides its count); then ConditionalCheckFailed. Raises ``cls.DoesNotExist`` if the item
        is missing.
        """
        from .retry import DEFAULT, Backoff

        if retries is not None and retries < 0:
            raise ValueError("retries must be >= 0")
        policy = DEFAULT if retries is None else Backoff(retries, DEFAULT.base_s, DEFAULT.cap_s)

        key = cls._key_for(hash_key, range_key)

        def once() -> M:
            # the store, not a reference model's cached copy: ``fn`` may judge the version it reads
            # (an If-Match the caller sent), and a copy older than the caller's read would be refused
            item = cls._load(key)
            if item is None:
                raise cls.DoesNotExist(f"no {cls.__name__} at {key}", key=key)
            fn(item)
            return item.save()

        try:
            return policy.run(once)
        except errors.ConditionalCheckFailed as exc:
            raise errors.ConditionalCheckFailed(
                f"{cls.__name__} update still conflicting after {policy.retries} retries", key=exc.key) from exc

    # -- public: listings --------------------------------------------------------------------------

    @classmethod
    def query(cls: type[M], hash_key: Any, range_prefix: Any = None, range_between: tuple[Any, Any] | None = None,
              limit: int | None = None, page_token: str | None = None, *,
              where: Callable[[M], bool] | None = None, read_limit: int | None = None) -> ResultPage[M]:
        """Items under one hash key, in key order (see :mod:`lscloud.store.keys` for that order).

        ``range_prefix``: only range keys starting with it. ``range_between=(lo, hi)``: only range
        keys from ``lo`` to ``hi`` inclusive, compared in the same key order (either end may be
        None for an open end). ``limit`` caps the page; ``page_token`` continues a previous page.

        ``where(item)``: keep only the items it accepts (read, then filtered, as DynamoDB's filter
        expressions: a shared index serving several readers). ``read_limit`` caps the items one
        page reads, so a page of a rare match may hold fewer than ``limit`` items and still a token.
        """
        table = cls._concrete()
        _check_limit(limit)
        hash_prefix = keys.hash_prefix(table, cls._key_string(cls._hash_attr, hash_key))
        prefix, start_after, stop_at = hash_prefix, None, None
        if (range_prefix is not None or range_between is not None) and cls._range_attr is None:
            raise TypeError(f"{cls.__name__} has no range key to filter on")
        if range_prefix is not None:
            prefix += keys.encode_part(cls._range_prefix_string(range_prefix))
        if range_between is not None:
            lo, hi = range_between
            if lo is not None:
                # StartAfter is exclusive, but "<lo>.json" sorts after "<lo>": an inclusive lower bound
                start_after = hash_prefix + keys.encode_part(cls._key_string(cls._range_attr, lo))
            if hi is not None:
                stop_at = hash_prefix + keys.encode_part(cls._key_string(cls._range_attr, hi)) + keys.SUFFIX
        return cls._page(prefix, start_after, stop_at, limit, page_token, where=where, read_limit=read_limit)

    @classmethod
    def query_keys(cls, hash_key: Any, range_between: tuple[Any, Any] | None = None,
                   limit: int | None = None, *, expired_too: bool = False) -> list[str]:
        """The range keys under one hash key, in key order, from the listing alone: no item is read.

        For indexes whose key is the whole record (a day's entries, open records, a geohash cell):
        :meth:`query` reads every item it lists, one GET each. ``range_between`` as in :meth:`query`.
        Items past a TTL are still listed (a TTL is in the body): a model with a TTLAttribute is
        listed only by a caller an expired item does no harm to, which says so (``expired_too``: a
        change feed whose reader looks at the recent keys alone).
        """
        if cls._range_attr is None:
            raise TypeError(f"{cls.__name__} has no range key to list")
        if cls._ttl_attr is not None and not expired_too:
            raise TypeError(f"{cls.__name__} has a TTL: its listed keys may be expired items; use query(), "
                            "or expired_too=True where an expired one does no harm")
        _check_limit(limit)
        table = cls._concrete()
        hash_prefix = keys.hash_prefix(table, cls._key_string(cls._hash_attr, hash_key))
        start_after = stop_at = None
        if range_between is not None:
            lo, hi = range_between
            if lo is not None:
                start_after = hash_prefix + keys.encode_part(cls._key_string(cls._range_attr, lo))
            if hi is not None:
                stop_at = hash_prefix + keys.encode_part(cls._key_string(cls._range_attr, hi)) + keys.SUFFIX
        listed = cls._keys(hash_prefix, start_after, stop_at, limit)
        if limit is not None:
            listed = itertools.islice(listed, limit)
        return [keys.decode_part(k[len(hash_prefix):-len(keys.SUFFIX)]) for k in listed]

    @classmethod
    def hash_keys(cls, limit: int) -> list[str]:
        """The hash keys of a table without range keys, in key order, from the listing alone (no
        item is read), at most ``limit``: the codes of a registry, the communes of a tally. A
        pseudonym-keyed table lists pseudonyms."""
        if cls._range_attr is not None:
            raise TypeError(f"{cls.__name__} has range keys: its hash keys are not one item each")
        _check_limit(limit)
        prefix = keys.table_prefix(cls._concrete())
        item = cls._key_re()
        out: list[str] = []
        for k in cls._keys(prefix, None, None, limit):
            if not item.fullmatch(k):
                continue   # not an item of the table (a stray object under its prefix)
            out.append(keys.decode_part(k[len(prefix):].split("/", 1)[0]))
            if len(out) >= limit:
                break
        return out

    @classmethod
    def query_all(cls: type[M], hash_key: Any, range_prefix: Any = None,
                  range_between: tuple[Any, Any] | None = None, page_size: int = 500) -> Iterator[M]:
        """Every item under one hash key, in key order: :meth:`query` page after page (``page_size``
        items a request), for a listing that needs them all (an index of a day, a registry)."""
        token = None
        while True:
            page = cls.query(hash_key, range_prefix, range_between, limit=page_size, page_token=token)
            yield from page
            token = page.page_token
            if not token:
                return

    @classmethod
    def _range_prefix_string(cls, value: Any) -> str:
        return value if isinstance(value, str) else cls._key_string(cls._range_attr, value)

    @classmethod
    def scan(cls: type[M], limit: int | None = None, page_token: str | None = None) -> ResultPage[M]:
        """Every item of the table, in key order (hash key, then range key), a page at a time."""
        return cls._scan(limit, page_token)

    @classmethod
    def _scan(cls: type[M], limit: int | None, page_token: str | None, *,
              held: Callable[[str, str], M | None] | None = None) -> ResultPage[M]:
        """:meth:`scan`; ``held(key, etag)`` answers an item without reading it, or None to read it
        (:meth:`lscloud.store.recent.RecentItems.scan`)."""
        _check_limit(limit)
        return cls._page(keys.table_prefix(cls._concrete()), None, None, limit, page_token, held=held)

    @classmethod
    def count(cls, hash_key: Any = None) -> int:
        """How many live items the table (or one hash key) holds. Lists every key: not for huge tables."""
        table = cls._concrete()
        prefix = (keys.table_prefix(table) if hash_key is None
                  else keys.hash_prefix(table, cls._key_string(cls._hash_attr, hash_key)))
        item_keys = cls._keys(prefix, None, None)
        if cls._ttl_attr is None:
            return sum(1 for _ in item_keys)
        total = 0
        while batch := list(itertools.islice(item_keys, _FETCH_BATCH)):
            total += sum(1 for item in cls._load_many(batch) if item is not None)
        return total

    @classmethod
    def _keys(cls, prefix: str, start_after: str | None, stop_at: str | None,
              expect: int | None = None) -> Iterator[str]:
        return (info.key for info in cls._listed(prefix, start_after, stop_at, expect))

    @classmethod
    def _listed(cls, prefix: str, start_after: str | None, stop_at: str | None,
                expect: int | None = None) -> Iterator[ObjectInfo]:
        """The items' keys as listed; ``expect``: how many the caller will likely take (its first
        listing request asks for that many, not for a thousand; later ones grow from there)."""
        objects, bucket = cls._conn()
        key_re = cls._key_re()
        listed: Iterable[ObjectInfo] = objects.list(bucket, prefix, start_after=start_after or None,
                                                    first_page=expect)
        if stop_at is not None:
            listed = itertools.takewhile(lambda info: info.key <= stop_at, listed)
        # anything else under the prefix (not written by a model) is not an item
        return (info for info in listed if key_re.fullmatch(info.key))

    @classmethod
    def _load_listed(cls: type[M], batch: list[ObjectInfo],
                     held: Callable[[str, str], M | None] | None) -> list[M | None]:
        """The items of ``batch`` in its order: those ``held`` answers without a read, the rest read."""
        if held is None:
            return cls._load_many([info.key for info in batch])
        copies = [held(info.key, info.etag) for info in batch]
        read = iter(cls._load_many([info.key for info, c in zip(batch, copies) if c is None]))
        return [c if c is not None else next(read) for c in copies]

    @classmethod
    def _page(cls: type[M], prefix: str, start_after: str | None, stop_at: str | None, limit: int | None,
              page_token: str | None, *, where: Callable[[M], bool] | None = None,
              read_limit: int | None = None, held: Callable[[str, str], M | None] | None = None) -> ResultPage[M]:
        _check_limit(read_limit)
        if page_token is not None:
            token_key = keys.decode_token(page_token, prefix, cls._key_re())
            start_after = max(start_after or "", token_key)
        # a page's items and one more key (is there a next page?); when a filter or an expired
        # item drops some, the listing's later requests grow until the page is full
        expect = None if limit is None else limit + 1
        listed = cls._listed(prefix, start_after, stop_at, expect)
        items: list[M] = []
        last_key = None
        read = 0
        while (limit is None or len(items) < limit) and (read_limit is None or read < read_limit):
            want = _FETCH_BATCH if limit is None else min(_FETCH_BATCH, limit - len(items))
            if read_limit is not None:
                want = min(want, read_limit - read)
            batch = list(itertools.islice(listed, want))
            if not batch:
                return ResultPage(items, None)
            read += len(batch)
            for info, item in zip(batch, cls._load_listed(batch, held)):
                last_key = info.key
                # None: vanished or expired since the listing
                if item is not None and (where is None or where(item)):
                    items.append(item)
        more = next(listed, None) is not None
        return ResultPage(items, keys.encode_token(last_key) if more and last_key else None)


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError("limit must be a positive int or None")
