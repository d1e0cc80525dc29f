// add-tenant-claim: a claimsmith sample rule in AssemblyScript (@extism/as-pdk).
//
// It puts the user's tenant on both tokens as the namespaced claim
// <namespace>tenant: client.metadata.tenant when the application names one,
// else the domain of the user's e-mail address. With neither, it abstains and
// sets nothing. Config: "namespace" (default https://example.com/).
//
// Build: npm ci && npm run build   (writes add-tenant-claim.wasm)
import { Host, Config } from "@extism/as-pdk";

// A rule's config is fixed for the life of the loaded module, and instances
// are reused from login to login: read it once.
let namespace: string | null = null;

// JSON paths, encoded once.
const clientTenant: Uint8Array[] = [utf8("client"), utf8("metadata"), utf8("tenant")];
const userEmail: Uint8Array[] = [utf8("user"), utf8("email")];

function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

export function on_login(): i32 {
  const input = Host.input();
  if (namespace == null) {
    const conf = Config.get("namespace");
    namespace = conf == null ? "https://example.com/" : conf;
  }
  const ns: string = namespace!;

  let tenant = "";
  const fromClient = jsonString(input, clientTenant);
  if (fromClient != null) tenant = fromClient;
  if (tenant.length == 0) {
    const email = jsonString(input, userEmail);
    if (email != null) {
      const at = email.lastIndexOf("@");
      if (at >= 0) tenant = email.substring(at + 1).toLowerCase();
    }
  }
  if (tenant.length == 0) {
    Host.output(Uint8Array.wrap(String.UTF8.encode("{}")));
    return 0;
  }
  const claim = "{" + quote(ns + "tenant") + ":" + quote(tenant) + "}";
  const out =
    '{"id_token":{"claims":' + claim +
    '},"access_token":{"claims":' + claim +
    '},"log":[{"level":"debug","msg":' + quote("tenant " + tenant) + "}]}";
  Host.output(Uint8Array.wrap(String.UTF8.encode(out)));
  return 0;
}

// myAbort reports an AssemblyScript abort (failed assertion, out of bounds) as
// a trap, which claimsmith turns into a rule error.
export function myAbort(
  message: string | null,
  fileName: string | null,
  lineNumber: u32,
  columnNumber: u32
): void {
  unreachable();
}

// quote encodes s as a JSON string.
function quote(s: string): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22 || c == 0x5c || c < 0x20) {
      plain = false;
      break;
    }
  }
  if (plain) return '"' + s + '"';
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22) out += '\\"';
    else if (c == 0x5c) out += "\\\\";
    else if (c < 0x20) out += "\\u00" + (c < 0x10 ? "0" : "") + c.toString(16);
    else out += String.fromCharCode(c);
  }
  return out + '"';
}

// jsonString returns the string at path in the JSON document (UTF-8 bytes),
// or null when a key is missing or the value is not a string. It is a small
// scanner over bytes: keys are compared without decoding them, and other
// values are skipped, not decoded.
function jsonString(doc: Uint8Array, path: Uint8Array[]): string | null {
  let pos = skipWS(doc, 0);
  for (let depth = 0; depth < path.length; depth++) {
    const want = path[depth];
    if (pos >= doc.length || doc[pos] != 0x7b) return null; // {
    pos = skipWS(doc, pos + 1);
    let found = false;
    while (pos < doc.length && doc[pos] != 0x7d) { // }
      const keyEnd = skipString(doc, pos);
      if (keyEnd < 0) return null;
      const match = keyEquals(doc, pos, keyEnd, want);
      pos = skipWS(doc, keyEnd);
      if (pos >= doc.length || doc[pos] != 0x3a) return null; // :
      pos = skipWS(doc, pos + 1);
      if (match) {
        found = true;
        break;
      }
      pos = skipValue(doc, pos);
      if (pos < 0) return null;
      pos = skipWS(doc, pos);
      if (pos < doc.length && doc[pos] == 0x2c) pos = skipWS(doc, pos + 1); // ,
    }
    if (!found) return null;
  }
  if (pos >= doc.length || doc[pos] != 0x22) return null;
  const end = skipString(doc, pos);
  if (end < 0) return null;
  return decodeString(doc, pos, end);
}

// keyEquals compares the raw key doc[start:end] (quotes included) with want.
// An escaped key never matches; claimsmith's keys need no escapes.
function keyEquals(doc: Uint8Array, start: i32, end: i32, want: Uint8Array): bool {
  if (end - start - 2 != want.length) return false;
  for (let i = 0; i < want.length; i++) {
    if (doc[start + 1 + i] != want[i]) return false;
  }
  return true;
}

function skipWS(doc: Uint8Array, pos: i32): i32 {
  while (pos < doc.length) {
    const c = doc[pos];
    if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) break;
    pos++;
  }
  return pos;
}

// skipString returns the position after the string starting at pos, or -1.
function skipString(doc: Uint8Array, pos: i32): i32 {
  if (doc[pos] != 0x22) return -1;
  pos++;
  while (pos < doc.length) {
    const c = doc[pos];
    if (c == 0x5c) pos += 2;
    else if (c == 0x22) return pos + 1;
    else pos++;
  }
  return -1;
}

// skipValue returns the position after the value starting at pos, or -1.
function skipValue(doc: Uint8Array, pos: i32): i32 {
  const c = doc[pos];
  if (c == 0x22) return skipString(doc, pos);
  if (c == 0x7b || c == 0x5b) {
    let depth = 0;
    while (pos < doc.length) {
      const d = doc[pos];
      if (d == 0x22) {
        pos = skipString(doc, pos);
        if (pos < 0) return -1;
        continue;
      }
      if (d == 0x7b || d == 0x5b) depth++;
      else if (d == 0x7d || d == 0x5d) {
        depth--;
        if (depth == 0) return pos + 1;
      }
      pos++;
    }
    return -1;
  }
  while (pos < doc.length) {
    const d = doc[pos];
    if (d == 0x2c || d == 0x7d || d == 0x5d || d == 0x20 || d == 0x0a || d == 0x0d || d == 0x09) break;
    pos++;
  }
  return pos;
}

// decodeString decodes the JSON string doc[start:end] (quotes included).
function decodeString(doc: Uint8Array, start: i32, end: i32): string {
  let escaped = false;
  for (let i = start + 1; i < end - 1; i++) {
    if (doc[i] == 0x5c) {
      escaped = true;
      break;
    }
  }
  const raw = String.UTF8.decode(doc.slice(start + 1, end - 1).buffer);
  if (!escaped) return raw;
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    let c = raw.charCodeAt(i);
    if (c != 0x5c) {
      out += String.fromCharCode(c);
      continue;
    }
    i++;
    c = raw.charCodeAt(i);
    if (c == 0x6e) out += "\n";
    else if (c == 0x74) out += "\t";
    else if (c == 0x72) out += "\r";
    else if (c == 0x62) out += "\b";
    else if (c == 0x66) out += "\f";
    else if (c == 0x75) {
      out += String.fromCharCode(<i32>parseInt(raw.substring(i + 1, i + 5), 16));
      i += 4;
    } else out += String.fromCharCode(c);
  }
  return out;
}
