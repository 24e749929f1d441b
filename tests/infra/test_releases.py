"""Only published Knative releases are installed: every URL the program fetches comes from a table
of releases whose assets were checked (components/releases.py); anything else stops the preview."""

from __future__ import annotations

import pytest

from components import knative, releases
from components.settings import KnativeSettings, SettingsError


def test_the_default_release_urls_are_all_published_and_net_certmanager_is_gone():
    urls = knative.release_urls(KnativeSettings())
    published = {r.url(a) for r in releases.PUBLISHED for a in r.assets}
    assert urls and set(urls) <= published
    assert not any("net-certmanager" in u for u in urls)  # never released after 1.14; in Serving since 1.15
    assert all(u.startswith("https://github.com/") and "/releases/download/knative-v" in u for u in urls)


@pytest.mark.parametrize("field, version", [("servingVersion", "1.16.0"), ("eventingVersion", "9.9.9"),
                                            ("natssVersion", "1.24.0"), ("kourierVersion", "1.22.0")])
def test_a_release_nobody_checked_is_refused_naming_the_known_ones(field, version):
    with pytest.raises(SettingsError, match=rf"knative.{field}.*known: "):
        KnativeSettings(**{field: version})


def test_the_channel_is_never_newer_than_eventing_and_serving_matches_eventing():
    with pytest.raises(SettingsError, match="servingVersion and eventingVersion"):
        KnativeSettings(servingVersion="1.24.0")
    assert releases.minor(KnativeSettings().natssVersion) <= releases.minor(KnativeSettings().eventingVersion)


def test_every_entry_says_where_it_was_checked():
    for r in releases.PUBLISHED:
        assert r.evidence and r.assets, r
        with pytest.raises(KeyError):
            r.url("net-certmanager.yaml")
