"""The Knative releases this program installs, and what each one publishes.

``pulumi up`` fetches release manifests from GitHub; a URL that was never published stops the
whole deployment at the first fetch (the program once asked for a ``net-certmanager`` release that
does not exist). So the program only builds URLs from this table: a version or an asset not listed
here is refused when the settings are read, with the versions it knows, long before any fetch.

Each entry was checked against a public record of the release (the cited page lists or uses that
exact asset); upgrading means adding the new release here after checking its assets the same way,
then changing ``lscloud:knative`` (infra/README.md, "Upgrading Knative").

Notes on the current choice:

- **Serving, Eventing and net-kourier 1.23.0** (released 2026-07-28; the community supports a
  release for about six months, so into early 2027; 1.24.0 is out since 2026-10-26 and is the next
  upgrade). Knative 1.23 refuses to start on Kubernetes older than 1.34.
- **No net-certmanager**: since Serving 1.15 the cert-manager integration lives in Serving's own
  controller (``config-certmanager`` ships in ``serving-core.yaml``); that repository's last
  release is 1.14 and it publishes nothing for later versions.
- **eventing-natss 1.19.6**: the JetStream channel is a knative-extensions project whose releases
  are not always published alongside the core; 1.19.6 is the newest release whose
  ``eventing-jsm.yaml`` could be verified. It runs against a newer Eventing through the stable
  ``messaging.knative.dev/v1`` channel contract; move it to the matching minor as soon as that
  release is published (the check below refuses an eventing-natss newer than Eventing).
"""

from __future__ import annotations

from dataclasses import dataclass

GITHUB = "https://github.com"


@dataclass(frozen=True)
class Release:
    repo: str  # owner/name on GitHub
    version: str  # without the knative-v prefix
    assets: tuple[str, ...]
    evidence: str  # where the release and its assets were seen

    @property
    def tag(self) -> str:
        return f"knative-v{self.version}"

    def url(self, asset: str) -> str:
        if asset not in self.assets:
            raise KeyError(f"{self.repo} {self.tag} publishes no {asset!r} (it publishes {list(self.assets)})")
        return f"{GITHUB}/{self.repo}/releases/download/{self.tag}/{asset}"


SERVING, EVENTING, KOURIER, NATSS = "knative/serving", "knative/eventing", "knative-extensions/net-kourier", \
    "knative-extensions/eventing-natss"

PUBLISHED: tuple[Release, ...] = (
    Release(SERVING, "1.23.0", ("serving-crds.yaml", "serving-core.yaml", "serving-default-domain.yaml",
                                "serving-hpa.yaml", "serving-post-install-jobs.yaml"),
            "sourceforge.net/projects/knative-serving.mirror/files/knative-v1.23.0 (asset list, 2026-07-29)"),
    Release(SERVING, "1.24.0", ("serving-crds.yaml", "serving-core.yaml", "serving-default-domain.yaml",
                                "serving-hpa.yaml", "serving-post-install-jobs.yaml"),
            "sourceforge.net/projects/knative-serving.mirror/files/knative-v1.24.0 (asset list, 2026-10-26)"),
    Release(EVENTING, "1.23.0", ("eventing-crds.yaml", "eventing-core.yaml", "mt-channel-broker.yaml"),
            "fetched as knative-eventing@v1.23.0 by public CRD snapshot scripts; the asset set is "
            "Eventing's documented installation files (knative.dev/docs/install/yaml-install/eventing)"),
    Release(KOURIER, "1.23.0", ("kourier.yaml",),
            "applied with Serving 1.23.0 in a public stand-up record (2026-09-20)"),
    Release(NATSS, "1.19.6", ("eventing-jsm.yaml",),
            "applied from knative-extensions/eventing-natss releases in public installation guides"),
)


def find(repo: str, version: str) -> Release:
    """The published release ``version`` of ``repo``, or KeyError naming the ones known."""
    for r in PUBLISHED:
        if r.repo == repo and r.version == version:
            return r
    known = sorted((r.version for r in PUBLISHED if r.repo == repo), key=_key)
    raise KeyError(f"{repo} has no known release {version!r} (known: {', '.join(known)}; a new one is added to "
                   "infra/components/releases.py once its assets are checked)")


def minor(version: str) -> tuple[int, int]:
    major, minor_, *_ = (int(p) for p in version.split("."))
    return major, minor_


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))
