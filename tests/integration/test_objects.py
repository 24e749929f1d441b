"""The object store client against a real weed mini: conditional writes are real."""

import threading

import pytest

from lscloud.store.errors import ConditionalCheckFailed, DoesNotExist

pytestmark = pytest.mark.integration


def test_create_only_refuses_second_writer(object_store, bucket):
    object_store.put(bucket, "a/1.json", b"{}", if_none_match=True)
    with pytest.raises(ConditionalCheckFailed) as err:
        object_store.put(bucket, "a/1.json", b"{\"x\":1}", if_none_match=True)
    assert err.value.cause == "conditional_check_failed"
    assert object_store.get(bucket, "a/1.json").body == b"{}"


def test_if_match_refuses_stale_etag(object_store, bucket):
    first = object_store.put(bucket, "k.json", b"1", if_none_match=True)
    object_store.put(bucket, "k.json", b"2", if_match=first)
    with pytest.raises(ConditionalCheckFailed):
        object_store.put(bucket, "k.json", b"3", if_match=first)
    assert object_store.get(bucket, "k.json").body == b"2"


def test_concurrent_creates_have_one_winner(object_store, bucket):
    wins, losses = [], []

    def create(i):
        try:
            object_store.put(bucket, "race.json", str(i).encode(), if_none_match=True)
            wins.append(i)
        except ConditionalCheckFailed:
            losses.append(i)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 15
    assert object_store.get(bucket, "race.json").body == str(wins[0]).encode()


def test_missing_object_and_listing(object_store, bucket):
    with pytest.raises(DoesNotExist):
        object_store.get(bucket, "nope.json")
    for i in range(5):
        object_store.put(bucket, f"p/{i:02d}.json", b"{}")
    object_store.put(bucket, "q/00.json", b"{}")
    keys = [o.key for o in object_store.list(bucket, "p/")]
    assert keys == [f"p/{i:02d}.json" for i in range(5)]
    assert [o.key for o in object_store.list(bucket, "p/", start_after="p/02.json", limit=2)] == ["p/03.json", "p/04.json"]


def test_the_endpoint_is_resolved_once_per_bucket_not_once_per_key(base_settings, bucket):
    """The boto3 client the store builds for benchmarks and tools (``store.client``): botocore's
    endpoint cache is keyed by every ruleset parameter, the object key included, so each new key
    used to pay a full evaluation of the S3 ruleset; the key is not a parameter the ruleset reads,
    so it is left out and the cache answers every later call."""
    from lscloud.store.objects import ObjectStore

    client = ObjectStore.from_settings(base_settings).client
    ruleset = client._ruleset_resolver._provider.ruleset
    evaluations = []
    evaluate = ruleset.evaluate
    ruleset.evaluate = lambda params: evaluations.append(dict(params)) or evaluate(params)
    for i in range(6):
        client.put_object(Bucket=bucket, Key=f"endpoints/{i}.json", Body=str(i).encode(), IfNoneMatch="*")
        assert client.get_object(Bucket=bucket, Key=f"endpoints/{i}.json")["Body"].read() == str(i).encode()
        assert client.head_object(Bucket=bucket, Key=f"endpoints/{i}.json")["ContentLength"] == 1
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="endpoints/")["Contents"]] == [
        f"endpoints/{i}.json" for i in range(6)]
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="endpoints/3")["Contents"]] == [
        "endpoints/3.json"]
    assert len(evaluations) <= 2, evaluations   # 20 calls, 2 listing prefixes and 6 keys: one endpoint
    assert all("Key" not in p and "Prefix" not in p for p in evaluations)
