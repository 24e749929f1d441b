"""The gateway's ``/docs``: every function's OpenAPI document in Swagger UI, served from the
``swagger-ui-bundle-v2`` package installed with the project (no CDN: the machine may be offline),
and — in the local cloud only — a dev-token getter so a developer can try an officer's endpoint.

Routes (all under ``/docs``, never forwarded to a function):

- ``/docs``: the explorer, one entry per running function (``/<name>/openapi.json``); "try it"
  calls go through this gateway (each document names its ``servers`` from ``X-Forwarded-Prefix``);
- ``/docs/assets/<file>``: Swagger UI's own files, from the package;
- ``/docs/token?role=R[&unit=U&agency=A&sub=S]``: a short-lived dev bearer token, only when the
  gateway was given a :class:`DevTokens` (``lscloud up`` gives one only when ``env == "local"``:
  :func:`dev_tokens_for`). Without one the page shows no token form and the route is a 404.
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from .. import roles as _roles
from .raw_problems import problem

try:  # the package's module is named like the original swagger-ui-bundle's
    import swagger_ui_bundle as _bundle

    ASSETS: Path | None = Path(_bundle.swagger_ui_path)
except ImportError:  # pragma: no cover - the page says the package is missing
    ASSETS = None

# only what the page loads: nothing else of the package's folder is served
_ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css", "favicon-32x32.png",
                "favicon-16x16.png")
_ROLE_RE = re.compile(r"[a-z][a-z-]{0,30}")
_CLAIM_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
TOKEN_TTL_S = 3600


@dataclass(frozen=True)
class DevTokens:
    """Issues dev tokens with the local cloud's dev key (never constructed in the cluster)."""

    private_pem: str
    issuer: str
    audience: str
    ttl_s: int = TOKEN_TTL_S

    def issue(self, role: str, *, sub: str | None = None, unit: str | None = None, agency: str | None = None) -> str:
        from ..auth import issue_token

        return issue_token(self.private_pem, sub=sub or f"dev-{role}", role=role, unit=unit, agency=agency,
                           ttl_s=self.ttl_s, issuer=self.issuer, audience=self.audience)


def dev_tokens_for(settings) -> DevTokens | None:
    """The dev-token issuer of the local cloud; ``None`` for any other environment."""
    if settings.env != "local":
        return None
    from ..auth import dev_keys

    private_pem, _ = dev_keys(settings.state_dir)
    return DevTokens(private_pem, settings.jwt_issuer, settings.jwt_audience,
                     min(TOKEN_TTL_S, settings.jwt_max_lifetime_s))


def token_roles() -> list[dict]:
    """The roles a bearer token may carry (``bank`` signs instead), with their meaning in both languages."""
    return [r.as_dict() for r in _roles.REGISTRY.values() if r.credential == "token"]


def answer(path: str, query: bytes, names: list[str], dev_tokens: DevTokens | None) -> tuple[int, list, bytes] | None:
    """The answer for a ``/docs`` path (``None``: not a docs path)."""
    if path in ("/docs", "/docs/"):
        return 200, [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")], \
            page(names, dev_tokens is not None)
    if path.startswith("/docs/assets/"):
        return _asset(path[len("/docs/assets/"):])
    if path == "/docs/token":
        return _token(query, dev_tokens)
    return None


def page(names: list[str], with_tokens: bool) -> bytes:
    urls = [{"name": n, "url": f"/{n}/openapi.json"} for n in names]
    index = "".join(f"<li><a href='/{html.escape(n)}/openapi.json'>{html.escape(n)}</a></li>" for n in names)
    options = "".join(f"<option value='{html.escape(r['name'])}' title='{html.escape(r['en'])} / "
                      f"{html.escape(r['vi'])}'>{html.escape(r['name'])}</option>" for r in token_roles())
    token_form = _TOKEN_FORM.replace("__OPTIONS__", options) if with_tokens else ""
    missing = "" if ASSETS is not None else ("<p class='error' lang='en'>swagger-ui-bundle-v2 is not installed: "
                                             "only the documents' links are shown.</p>")
    return (_PAGE.replace("__TOKEN_FORM__", token_form).replace("__MISSING__", missing)
            .replace("__INDEX__", index)
            .replace("__URLS__", json.dumps(urls).replace("</", "<\\/"))).encode()


def _asset(name: str) -> tuple[int, list, bytes]:
    if ASSETS is None or name not in _ASSET_FILES:
        return not_found()
    body = (ASSETS / name).read_bytes()
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype.endswith("javascript"):
        ctype += "; charset=utf-8"
    return 200, [(b"content-type", ctype.encode()), (b"cache-control", b"public, max-age=3600")], body


def _token(query: bytes, dev_tokens: DevTokens | None) -> tuple[int, list, bytes]:
    if dev_tokens is None:
        return not_found()
    q = {k: v[0] for k, v in parse_qs(query.decode("latin-1")).items()}
    allowed = {r["name"] for r in token_roles()}
    errors = []
    role = q.get("role", "")
    if role not in allowed or not _ROLE_RE.fullmatch(role):
        errors.append({"field": "role", "message": f"one of {', '.join(sorted(allowed))}"})
    for claim in ("unit", "agency", "sub"):
        if q.get(claim) and not _CLAIM_RE.fullmatch(q[claim]):
            errors.append({"field": claim, "message": "1-64 characters of [A-Za-z0-9._:-]"})
    if errors:
        return problem(400, "invalid-parameter", "Invalid query parameter", "Choose a role a token may carry.",
                       "Tham số truy vấn không hợp lệ", "Hãy chọn một vai trò hợp lệ.", errors=errors)
    token = dev_tokens.issue(role, sub=q.get("sub") or None, unit=q.get("unit") or None, agency=q.get("agency") or None)
    body = json.dumps({"token": token, "role": role, "expires_in": dev_tokens.ttl_s, "local_only": True}).encode()
    return 200, [(b"content-type", b"application/json"), (b"cache-control", b"no-store")], body


def not_found() -> tuple[int, list, bytes]:
    return problem(404, "not-found", "Not found", "Nothing exists at this address.", "Không tìm thấy",
                   "Không có tài nguyên nào tại địa chỉ này.")


_TOKEN_FORM = """
<form id="dev-token" onsubmit="return getToken(event)">
  <strong><span lang="en">Dev token (local cloud only)</span> / chỉ trong môi trường cục bộ:</strong>
  <label for="role">Vai trò <span lang="en">(role)</span></label>
  <select id="role" name="role">__OPTIONS__</select>
  <label for="unit">Đơn vị <span lang="en">(unit)</span></label>
  <input id="unit" name="unit" size="10">
  <label for="agency">Cơ quan <span lang="en">(agency)</span></label>
  <input id="agency" name="agency" size="10">
  <button type="submit" id="get-token"><span lang="en">Get token</span> / Lấy mã</button>
  <span id="token-status" role="status"></span>
</form>
<script>
async function getToken(event) {
  event.preventDefault();
  const q = new URLSearchParams({role: document.getElementById("role").value});
  for (const claim of ["unit", "agency"]) {
    const v = document.getElementById(claim).value.trim();
    if (v) q.set(claim, v);
  }
  const status = document.getElementById("token-status");
  const resp = await fetch("/docs/token?" + q);
  const body = await resp.json();
  if (!resp.ok) { status.textContent = body.title + " / " + body.title_vi; return false; }
  window.ui.preauthorizeApiKey("bearer", body.token);
  status.textContent = "✓ " + body.role + ": authorized for " + Math.round(body.expires_in / 60) +
                       " min (đã cấp quyền)";
  return false;
}
</script>
"""

_PAGE = """<!doctype html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lạng Sơn Cloud — API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<style>
  body { margin: 0; font-family: system-ui, sans-serif; }
  header { padding: .8em 1.5em; background: #1b4332; color: #fff; }
  header h1 { margin: 0; font-size: 1.3em; }
  header p { margin: .3em 0 0; }
  #dev-token { padding: .6em 1.5em; background: #fff8e1; border-bottom: 1px solid #e0c070; }
  #dev-token label { margin-left: .6em; }
  #index { display: none; }
  .error { color: #b00; padding: 0 1.5em; }
</style>
</head>
<body>
<header>
  <h1>Lạng Sơn Cloud — API</h1>
  <p><span lang="en">Every function's OpenAPI 3.1 document; "Try it out" calls the local cloud through this gateway.</span>
     (Tài liệu OpenAPI 3.1 của từng hàm; "Try it out" gọi thẳng tới đám mây cục bộ qua cổng này.)</p>
</header>
__TOKEN_FORM__
__MISSING__
<ul id="index">__INDEX__</ul>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js" charset="UTF-8"></script>
<script src="/docs/assets/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
<script>
// The list of documents is written by the gateway from the functions it routes to.
const URLS = __URLS__;
window.ui = SwaggerUIBundle({
  urls: URLS,
  "urls.primaryName": new URLSearchParams(location.search).get("fn") || (URLS[0] || {}).name,
  dom_id: "#swagger-ui",
  // Swagger UI sends each document's URL to validator.swagger.io unless the page is on localhost:
  // the local cloud's APIs are not published, and the machine may be offline
  validatorUrl: null,
  deepLinking: true,
  persistAuthorization: true,
  displayOperationId: false,
  defaultModelsExpandDepth: 0,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
});

</script>
</body>
</html>
"""
