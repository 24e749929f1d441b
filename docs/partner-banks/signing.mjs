// The soft ATM's partner signature in JavaScript, with Node's built-in crypto only.
//
//   sign(method, pathWithQuery, body, partner, keyId, key) -> headers for a request to the soft ATM
//   verifyWebhook(headers, method, pathWithQuery, rawBody, keys, options) -> {ok, reason}
//
// `node signing.mjs` checks every vector of vectors.json (exit 1 on any difference).
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

export function canonical(method, pathWithQuery, timestamp, nonce, body) {
  const i = pathWithQuery.indexOf("?");
  const path = i < 0 ? pathWithQuery : pathWithQuery.slice(0, i);
  const query = i < 0 ? "" : pathWithQuery.slice(i + 1);
  // the path is signed percent-decoded; the query exactly as sent
  const signedPath = decodeURIComponent(path) + (query ? "?" + query : "");
  const bodyHash = createHash("sha256").update(body ?? Buffer.alloc(0)).digest("hex");
  return [method.toUpperCase(), signedPath, String(timestamp), nonce, bodyHash].join("\n");
}

export function mac(key, message) {
  return createHmac("sha256", Buffer.from(key, "utf8")).update(Buffer.from(message, "utf8")).digest("base64url");
}

export function sign(method, pathWithQuery, body, partner, keyId, key, timestamp, nonce) {
  timestamp = String(timestamp ?? Math.floor(Date.now() / 1000));
  nonce = nonce ?? randomBytes(18).toString("base64url");
  return {
    "X-LSCloud-Partner": partner,
    "X-LSCloud-Key-Id": String(keyId),
    "X-LSCloud-Timestamp": timestamp,
    "X-LSCloud-Nonce": nonce,
    "X-LSCloud-Signature": mac(key, canonical(method, pathWithQuery, timestamp, nonce, body)),
  };
}

// keys: {"1": "...", "2": "..."} (both slots during a rotation); seen: a Set of nonces (a store in production:
// keep each nonce at least 2 * windowS + 60 s, 11 minutes: a timestamp may be windowS ahead of your clock when
// the webhook first comes and windowS behind when a replay comes). pathWithQuery: the request target as it
// came (Node's req.url), not a path something has decoded already: canonical() decodes it once.
export function verifyWebhook(headers, method, pathWithQuery, rawBody, keys, { windowS = 300, seen = new Set(), now = Date.now() / 1000 } = {}) {
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
  const key = keys[h["x-lscloud-key-id"]];
  if (!key) return { ok: false, reason: "unknown key id" };
  const ts = Number.parseInt(h["x-lscloud-timestamp"], 10);
  if (!Number.isFinite(ts) || Math.abs(now - ts) > windowS) return { ok: false, reason: "timestamp outside the window" };
  const nonce = h["x-lscloud-nonce"] ?? "";
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(nonce)) return { ok: false, reason: "bad nonce" };
  const expected = Buffer.from(mac(key, canonical(method, pathWithQuery, h["x-lscloud-timestamp"], nonce, rawBody)));
  const given = Buffer.from(h["x-lscloud-signature"] ?? "");
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: "bad signature" };
  if (seen.has(nonce)) return { ok: false, reason: "replayed nonce" };
  seen.add(nonce);
  return { ok: true, reason: "verified" };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const vectors = JSON.parse(readFileSync(new URL("./vectors.json", import.meta.url), "utf8"));
  let failed = 0;
  for (const v of vectors.requests) {
    const body = Buffer.from(v.body, "utf8");
    const got = sign(v.method, v.path, body, "simbank", "1", vectors.key, v.timestamp, v.nonce)["X-LSCloud-Signature"];
    const ok = got === v.signature;
    failed += ok ? 0 : 1;
    console.log(`${ok ? "ok  " : "FAIL"} ${v.name}: ${got}`);
  }
  // the webhook vector verifies once, and then is a replay; a changed body never verifies
  const w = vectors.requests[vectors.requests.length - 1];
  const headers = sign(w.method, w.path, Buffer.from(w.body), "simbank", "1", vectors.key, w.timestamp, w.nonce);
  const opts = { seen: new Set(), now: Number(w.timestamp) + 10 };
  const keys = { "1": vectors.key };
  const checks = [
    [verifyWebhook(headers, w.method, w.path, Buffer.from(w.body), keys, opts).ok, true],
    [verifyWebhook(headers, w.method, w.path, Buffer.from(w.body), keys, opts).reason, "replayed nonce"],
    [verifyWebhook(headers, w.method, w.path, Buffer.from(w.body + " "), keys, { now: opts.now }).reason, "bad signature"],
    [verifyWebhook(headers, w.method, w.path, Buffer.from(w.body), keys, { now: opts.now + 3600 }).reason, "timestamp outside the window"],
  ];
  checks.forEach(([got, want], i) => { if (got !== want) { failed++; console.log(`FAIL webhook check ${i}: ${got}`); } });
  console.log(failed ? `${failed} failed` : "all vectors reproduced");
  process.exit(failed ? 1 : 0);
}
