// Reads the server name (SNI) from a TLS ClientHello as it arrives at the start of a CONNECT tunnel,
// without decrypting anything (the ClientHello is plaintext in TLS 1.0-1.3). The handshake message
// may span several TLS records and the records several TCP segments: push() takes bytes as they
// come and answers once it knows. Bounded: a ClientHello longer than MAX_CLIENT_HELLO is given up.
// RFC 8446 §4.1.2 (ClientHello), RFC 6066 §3 (server_name), draft-ietf-tls-esni (encrypted_client_hello).

/** A ClientHello with post-quantum key shares is ~2 KB; browsers stay far below this. */
export const MAX_CLIENT_HELLO = 32 * 1024;

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ENCRYPTED_CLIENT_HELLO = 0xfe0d;

export type PeekResult =
  /** More bytes needed. */
  | { kind: "more" }
  /** Not a TLS ClientHello (another protocol in the tunnel). */
  | { kind: "not-tls" }
  /** Starts like TLS but is malformed or too large. */
  | { kind: "bad"; why: string }
  /** A complete ClientHello; `sni` absent when it names no server. */
  | { kind: "hello"; sni?: string; ech: boolean };

const MORE: PeekResult = { kind: "more" };

/** Collects the handshake bytes from the TLS records in `data`; null when more bytes are needed. */
function handshakeBytes(data: Buffer): Buffer | PeekResult {
  const fragments: Buffer[] = [];
  let have = 0;
  let want = -1;
  let at = 0;
  while (true) {
    if (data.length - at < 5) return MORE;
    if (data[at] !== RECORD_HANDSHAKE)
      return { kind: "bad", why: "a non-handshake record before the ClientHello ended" };
    if (data[at + 1] !== 3) return { kind: "bad", why: "unknown record version" };
    const length = data.readUInt16BE(at + 3);
    if (length === 0 || length > 16_384 + 256) return { kind: "bad", why: "bad record length" };
    if (data.length - at - 5 < length) return MORE;
    const fragment = data.subarray(at + 5, at + 5 + length);
    fragments.push(fragment);
    have += fragment.length;
    at += 5 + length;
    if (want < 0 && have >= 4) {
      const first = fragments.length === 1 ? fragment : Buffer.concat(fragments);
      if (first[0] !== HANDSHAKE_CLIENT_HELLO)
        return { kind: "bad", why: "the first handshake message is no ClientHello" };
      want = 4 + ((first[1]! << 16) | (first[2]! << 8) | first[3]!);
      if (want > MAX_CLIENT_HELLO) return { kind: "bad", why: "ClientHello too large" };
    }
    if (want >= 0 && have >= want) return Buffer.concat(fragments).subarray(0, want);
  }
}

/** Parses a complete ClientHello handshake message (type and 3-byte length included). */
function parseClientHello(hello: Buffer): PeekResult {
  const bad = (why: string): PeekResult => ({ kind: "bad", why });
  let at = 4 + 2 + 32; // header, legacy_version, random
  if (hello.length < at + 1) return bad("ClientHello too short");
  at += 1 + hello[at]!; // session id
  if (hello.length < at + 2) return bad("ClientHello too short");
  at += 2 + hello.readUInt16BE(at); // cipher suites
  if (hello.length < at + 1) return bad("ClientHello too short");
  at += 1 + hello[at]!; // compression methods
  if (at === hello.length) return { kind: "hello", ech: false }; // no extensions (old clients)
  if (hello.length < at + 2) return bad("ClientHello too short");
  const end = at + 2 + hello.readUInt16BE(at);
  if (end > hello.length) return bad("extensions overrun the ClientHello");
  at += 2;
  let sni: string | undefined;
  let ech = false;
  while (at + 4 <= end) {
    const type = hello.readUInt16BE(at);
    const length = hello.readUInt16BE(at + 2);
    const body = at + 4;
    if (body + length > end) return bad("an extension overruns the ClientHello");
    if (type === EXT_ENCRYPTED_CLIENT_HELLO) ech = true;
    else if (type === EXT_SERVER_NAME && length >= 2) {
      // server_name_list: type 0 (host_name), 2-byte length, name.
      const listEnd = body + 2 + hello.readUInt16BE(body);
      if (listEnd > body + length) return bad("bad server_name list");
      let p = body + 2;
      while (p + 3 <= listEnd) {
        const nameType = hello[p]!;
        const nameLength = hello.readUInt16BE(p + 1);
        if (p + 3 + nameLength > listEnd) return bad("bad server_name entry");
        if (nameType === 0 && sni === undefined) sni = hello.toString("latin1", p + 3, p + 3 + nameLength);
        p += 3 + nameLength;
      }
    }
    at = body + length;
  }
  if (sni !== undefined) {
    // A host name is LDH ASCII (RFC 6066); anything else is no name we could judge.
    if (sni.length === 0 || sni.length > 255 || !/^[A-Za-z0-9._-]+$/.test(sni))
      return bad("server_name is not a host name");
    sni = sni.toLowerCase();
    if (sni.endsWith(".")) sni = sni.slice(0, -1);
  }
  return sni === undefined ? { kind: "hello", ech } : { kind: "hello", sni, ech };
}

/** Judges the bytes a tunnel's client sent so far (all of them, from the first). */
export function peekClientHello(data: Buffer): PeekResult {
  if (data.length === 0) return MORE;
  if (data[0] !== RECORD_HANDSHAKE) return { kind: "not-tls" };
  if (data.length >= 2 && data[1] !== 3) return { kind: "not-tls" };
  const bytes = handshakeBytes(data);
  if (!Buffer.isBuffer(bytes)) {
    if (bytes.kind === "more" && data.length > MAX_CLIENT_HELLO + 5 * 4)
      return { kind: "bad", why: "ClientHello too large" };
    return bytes;
  }
  return parseClientHello(bytes);
}
