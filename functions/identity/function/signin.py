"""Sign-in tokens of the local cloud: a verified citizen's, an officer's or supervisor's.

Only in the local cloud (and tests) does this function hold a signing key (the dev private key,
``LSCLOUD_JWT_SIGNING_KEY_FILE``, given to it alone by the supervisor). In the cluster the
province's identity provider issues tokens and these routes answer 404.
"""

from __future__ import annotations

from pathlib import Path

from lscloud import config, errors, peers
from lscloud.auth import issue_token

from .options import Options
from .verification import Verifier, claim_of


class TokenIssuingDisabled(errors.NotFound):
    type = "token-issuing-disabled"
    title, title_vi = "Token issuing is disabled in the cluster", "Không cấp mã xác thực trên cụm"


class SigningKeyMissing(errors.DomainError):
    status, type = 503, "signing-key-missing"
    title, title_vi = "No signing key", "Chưa có khóa ký"


class VerificationFailed(errors.Unauthenticated):
    type = "verification-failed"
    title, title_vi = "Verification failed", "Xác thực không thành công"


class DirectoryUnavailable(errors.Unavailable):
    type = "directory-unavailable"
    title, title_vi = "Directory unavailable", "Danh mục tạm thời không khả dụng"


class TokenIssuer:
    """Issues dev tokens for verified citizens and for officers of directory agencies and units."""

    def __init__(self, settings: config.Settings, options: Options, verifier: Verifier):
        self.settings = settings
        self.options = options
        self.verifier = verifier
        self.directory = peers.client(settings)
        self._key: str | None = None  # read once, on the first token asked for

    def citizen(self, caller: str, body: dict) -> dict:
        """A ``citizen`` token (``sub`` = the CCCD) for data that matches the registry; 401 otherwise."""
        key = self._signing_key()
        claim = claim_of(body)
        result = self.verifier.verify(caller, claim)
        if not result.match:
            raise VerificationFailed("The data do not match the national population database.",
                                     detail_vi="Thông tin không khớp với Cơ sở dữ liệu quốc gia về dân cư.",
                                     errors=[errors.field("/" + f, "does not match")
                                             for f, v in result.fields.items() if v != "match"])
        ttl = self.options.token_ttl_s
        return {"access_token": self._issue(key, claim.id_number, "citizen", ttl), "token_type": "Bearer",
                "expires_in": ttl, "sub": claim.id_number, "role": "citizen"}

    def officer(self, body: dict) -> dict:
        """An ``officer`` or ``supervisor`` token for an agency and a unit the directory knows."""
        key = self._signing_key()
        agency = self._lookup("agencies", body["agency"], "/agency", "agency", "cơ quan")
        self._lookup("units", body["unit"], "/unit", "unit", "đơn vị hành chính")
        if agency.get("kind") == "commune-committee" and agency.get("unit_code") != body["unit"]:
            raise errors.Invalid(f"An officer of {body['agency']} works in unit {agency.get('unit_code')}, "
                                 f"not {body['unit']}.", detail_vi="Cán bộ UBND xã phải thuộc đơn vị của xã đó.",
                                 errors=[errors.field("/unit", f"must be {agency.get('unit_code')} for this agency")])
        role, ttl = body.get("role", "officer"), int(body.get("ttl_s", self.options.token_ttl_s))
        longest = self.settings.jwt_max_lifetime_s
        if ttl > longest:
            raise errors.Invalid(f"Tokens may live at most {longest} s here.",
                                 detail_vi=f"Mã xác thực chỉ được có hiệu lực tối đa {longest} giây.",
                                 errors=[errors.field("/ttl_s", f"at most {longest}")])
        token = self._issue(key, body["officer_id"], role, ttl, agency=body["agency"], unit=body["unit"])
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "sub": body["officer_id"],
                "role": role, "agency": body["agency"], "unit": body["unit"]}

    def _issue(self, key: str, sub: str, role: str, ttl_s: int, **claims) -> str:
        return issue_token(key, sub, role, ttl_s=ttl_s, issuer=self.settings.jwt_issuer,
                           audience=self.settings.jwt_audience, **claims)

    def _signing_key(self) -> str:
        if self.settings.env != "local":
            raise TokenIssuingDisabled(
                "In the cluster bearer tokens come from the province's identity provider (JWKS); "
                "this endpoint exists only in the local cloud and tests.",
                detail_vi="Trên cụm, mã xác thực do hệ thống định danh của tỉnh cấp.")
        if self._key is None:
            path = self.settings.jwt_signing_key_file
            try:
                self._key = Path(path).read_text() if path else ""
            except OSError:
                self._key = ""
        if not self._key:
            raise SigningKeyMissing("The local cloud did not give this function a signing key "
                                    "(LSCLOUD_JWT_SIGNING_KEY_FILE).",
                                    detail_vi="Chức năng chưa được cấp khóa ký mã xác thực.")
        return self._key

    def _lookup(self, kind: str, code: str, field: str, noun: str, noun_vi: str) -> dict:
        try:
            return self.directory.get_json("directory", peers.path(f"/v1/{kind}", code))
        except peers.PeerUnavailable:
            raise DirectoryUnavailable("The directory could not be asked; retry later.",
                                       detail_vi="Không hỏi được danh mục; vui lòng thử lại sau.") from None
        except peers.PeerError:  # 404, or the directory refused the code outright
            raise errors.Invalid(f"No {noun} {code!r} in the directory.",
                                 detail_vi=f"Không có {noun_vi} {code!r} trong danh mục.",
                                 errors=[errors.field(field, f"no {noun} with this code in the directory")]) from None
