// SASL mechanisms for AUTHENTICATE: PLAIN, and SCRAM-SHA-256 (RFC 7677)
// with WebCrypto. Each mechanism is an object whose step(serverData) gives
// the next client response (a string; "" for an empty response).

const encoder = new TextEncoder();

function toBase64(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Base64 of a UTF-8 string. */
export function utf8ToBase64(text) {
  return toBase64(encoder.encode(text));
}

/** UTF-8 string of a base64 payload. */
export function base64ToUtf8(text) {
  return new TextDecoder().decode(fromBase64(text));
}

export function plain(account, password) {
  return {
    name: "PLAIN",
    async step() {
      return `\0${account}\0${password}`;
    },
  };
}

async function hmac(key, data) {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data));
}

async function sha256(data) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

function xor(a, b) {
  return a.map((byte, i) => byte ^ b[i]);
}

function saslName(name) {
  return name.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

/**
 * SCRAM-SHA-256: available only where WebCrypto is (secure contexts).
 * *clientNonce* is random unless given (the RFC 7677 example gives one).
 */
export function scramSha256(account, password, clientNonce = toBase64(crypto.getRandomValues(new Uint8Array(18)))) {
  const clientFirstBare = `n=${saslName(account)},r=${clientNonce}`;
  let serverSignature = null;
  let stage = 0;
  return {
    name: "SCRAM-SHA-256",
    async step(serverData) {
      if (stage === 0) {
        stage = 1;
        return `n,,${clientFirstBare}`;
      }
      const fields = Object.fromEntries(
        serverData.split(",").map((f) => [f.slice(0, 1), f.slice(2)]),
      );
      if (stage === 1) {
        stage = 2;
        if (!fields.r || !fields.r.startsWith(clientNonce)) throw new Error("bad server nonce");
        const iterations = parseInt(fields.i, 10);
        const pbkdfKey = await crypto.subtle.importKey(
          "raw", encoder.encode(password.normalize("NFKC")), "PBKDF2", false, ["deriveBits"],
        );
        const salted = new Uint8Array(
          await crypto.subtle.deriveBits(
            { name: "PBKDF2", hash: "SHA-256", salt: fromBase64(fields.s), iterations },
            pbkdfKey, 256,
          ),
        );
        const clientKey = await hmac(salted, encoder.encode("Client Key"));
        const storedKey = await sha256(clientKey);
        const withoutProof = `c=biws,r=${fields.r}`;
        const authMessage = encoder.encode(`${clientFirstBare},${serverData},${withoutProof}`);
        const clientSignature = await hmac(storedKey, authMessage);
        const serverKey = await hmac(salted, encoder.encode("Server Key"));
        serverSignature = toBase64(await hmac(serverKey, authMessage));
        return `${withoutProof},p=${toBase64(xor(clientKey, clientSignature))}`;
      }
      if (fields.e) throw new Error(fields.e);
      if (fields.v !== serverSignature) throw new Error("server signature mismatch");
      return "";
    },
  };
}

/** The best mechanism both sides have. */
export function chooseMechanism(offered, account, password) {
  const list = (offered || "PLAIN").split(",");
  if (list.includes("SCRAM-SHA-256") && globalThis.crypto && crypto.subtle) {
    return scramSha256(account, password);
  }
  return plain(account, password);
}
