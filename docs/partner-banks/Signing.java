// The soft ATM's partner signature in Java (JDK only: javax.crypto, java.security).
//
//   Signing.sign(method, pathWithQuery, body, partner, keyId, key, timestamp, nonce) -> headers
//   Signing.verifyWebhook(headers, method, pathWithQuery, rawBody, keys, windowS, nowS, seenNonces) -> reason or null
//
// `java Signing.java vectors.json` (Java 11+ runs a single source file) checks every vector; exit 1 on a difference.
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.HashSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public final class Signing {
    private static final Pattern NONCE = Pattern.compile("[A-Za-z0-9_-]{16,128}");

    /** Percent-decodes a path as UTF-8 ('+' stays '+': this is a path, not a form). */
    static String decodePath(String path) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] raw = path.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < raw.length; i++) {
            if (raw[i] == '%' && i + 2 < raw.length) {
                out.write(Integer.parseInt(new String(raw, i + 1, 2, StandardCharsets.US_ASCII), 16));
                i += 2;
            } else {
                out.write(raw[i]);
            }
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    public static String canonical(String method, String pathWithQuery, String timestamp, String nonce, byte[] body)
            throws Exception {
        int q = pathWithQuery.indexOf('?');
        String path = q < 0 ? pathWithQuery : pathWithQuery.substring(0, q);
        String query = q < 0 ? "" : pathWithQuery.substring(q + 1);
        String signedPath = decodePath(path) + (query.isEmpty() ? "" : "?" + query);
        String bodyHash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(body));
        return String.join("\n", method.toUpperCase(), signedPath, timestamp, nonce, bodyHash);
    }

    public static String mac(String key, String message) throws Exception {
        Mac hmac = Mac.getInstance("HmacSHA256");
        hmac.init(new SecretKeySpec(key.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        byte[] digest = hmac.doFinal(message.getBytes(StandardCharsets.UTF_8));
        return Base64.getUrlEncoder().withoutPadding().encodeToString(digest);
    }

    public static Map<String, String> sign(String method, String pathWithQuery, byte[] body, String partner,
                                           String keyId, String key, String timestamp, String nonce) throws Exception {
        if (timestamp == null) timestamp = Long.toString(System.currentTimeMillis() / 1000);
        if (nonce == null) {
            byte[] b = new byte[18];
            new SecureRandom().nextBytes(b);
            nonce = Base64.getUrlEncoder().withoutPadding().encodeToString(b);
        }
        Map<String, String> h = new LinkedHashMap<>();
        h.put("X-LSCloud-Partner", partner);
        h.put("X-LSCloud-Key-Id", keyId);
        h.put("X-LSCloud-Timestamp", timestamp);
        h.put("X-LSCloud-Nonce", nonce);
        h.put("X-LSCloud-Signature", mac(key, canonical(method, pathWithQuery, timestamp, nonce, body)));
        return h;
    }

    /** null when the webhook verifies (its nonce is then remembered), else why it is refused. Keep each nonce at
     *  least 2 * windowS + 60 s (11 minutes); pathWithQuery is the request target as it came, not a decoded path. */
    public static String verifyWebhook(Map<String, String> headers, String method, String pathWithQuery, byte[] rawBody,
                                       Map<String, String> keys, long windowS, long nowS, Set<String> seenNonces)
            throws Exception {
        String key = keys.get(headers.getOrDefault("X-LSCloud-Key-Id", ""));
        if (key == null) return "unknown key id";
        long ts;
        try { ts = Long.parseLong(headers.getOrDefault("X-LSCloud-Timestamp", "")); }
        catch (NumberFormatException e) { return "timestamp outside the window"; }
        if (Math.abs(nowS - ts) > windowS) return "timestamp outside the window";
        String nonce = headers.getOrDefault("X-LSCloud-Nonce", "");
        if (!NONCE.matcher(nonce).matches()) return "bad nonce";
        byte[] expected = mac(key, canonical(method, pathWithQuery, Long.toString(ts), nonce, rawBody))
                .getBytes(StandardCharsets.US_ASCII);
        byte[] given = headers.getOrDefault("X-LSCloud-Signature", "").getBytes(StandardCharsets.US_ASCII);
        if (!MessageDigest.isEqual(expected, given)) return "bad signature";
        if (!seenNonces.add(nonce)) return "replayed nonce";
        return null;
    }

    // a minimal reader for vectors.json (string members only; no JSON library needed for the check)
    private static String field(String object, String name) {
        Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(object);
        if (!m.find()) throw new IllegalArgumentException("no " + name);
        return m.group(1).replace("\\\"", "\"").replace("\\\\", "\\");
    }

    public static void main(String[] args) throws Exception {
        String json = Files.readString(Path.of(args.length > 0 ? args[0] : "vectors.json"));
        String key = field(json, "key");
        int failed = 0;
        // each vector is the text from one "name" member to the next
        String[] vectors = json.substring(json.indexOf("\"requests\"")).split("(?=\"name\"\\s*:)");
        String last = null;
        for (int i = 1; i < vectors.length; i++) {
            String v = vectors[i];
            last = v;
            byte[] body = field(v, "body").getBytes(StandardCharsets.UTF_8);
            String got = sign(field(v, "method"), field(v, "path"), body, "simbank", "1", key, field(v, "timestamp"),
                              field(v, "nonce")).get("X-LSCloud-Signature");
            boolean ok = got.equals(field(v, "signature"));
            if (!ok) failed++;
            System.out.println((ok ? "ok   " : "FAIL ") + field(v, "name") + ": " + got);
        }
        byte[] body = field(last, "body").getBytes(StandardCharsets.UTF_8);
        String ts = field(last, "timestamp");
        Map<String, String> h = sign(field(last, "method"), field(last, "path"), body, "simbank", "1", key, ts,
                                     field(last, "nonce"));
        Set<String> seen = new HashSet<>();
        long now = Long.parseLong(ts) + 10;
        String[] got = {
            String.valueOf(verifyWebhook(h, "POST", field(last, "path"), body, Map.of("1", key), 300, now, seen)),
            String.valueOf(verifyWebhook(h, "POST", field(last, "path"), body, Map.of("1", key), 300, now, seen)),
            String.valueOf(verifyWebhook(h, "POST", field(last, "path"), "x".getBytes(), Map.of("1", key), 300, now, new HashSet<>())),
        };
        String[] want = {"null", "replayed nonce", "bad signature"};
        for (int i = 0; i < want.length; i++) {
            if (!got[i].equals(want[i])) { failed++; System.out.println("FAIL webhook check " + i + ": " + got[i]); }
        }
        System.out.println(failed == 0 ? "all vectors reproduced" : failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
