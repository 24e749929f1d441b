"""A function's name must leave room for the names Knative derives from it: its revision's private
Service ``<name>-00001-private`` is a DNS label too (at most 63 characters, knative/serving#3236)."""

import pytest

from lscloud import manifest

FUNC_YAML = "specVersion: 0.36.0\nname: {name}\nruntime: python\n"


def _parse(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    return manifest.parse(FUNC_YAML.format(name=name), d / manifest.MANIFEST)


def test_longest_name_leaves_room_for_the_private_service(tmp_path):
    name = "a" * manifest.NAME_MAX_CHARS
    assert _parse(tmp_path, name).name == name
    assert len(f"{name}-00001-private") == 63


@pytest.mark.parametrize("length", [50, 60, 63])
def test_longer_name_is_refused_naming_the_field(tmp_path, length):
    name = ("environment-air-quality-observations-aggregator-for-the-province")[:length - 1] + "z"
    assert len(name) == length
    with pytest.raises(manifest.ManifestError) as err:
        _parse(tmp_path, name)
    message = str(err.value)
    assert "/name" in message and "49" in message and "-00001-private" in message
