/**
 * PayPal webhook signatures, verified offline (protocols/paypal.md, option B): the signed message
 * is `transmission_id|transmission_time|webhook_id|crc32(raw body bytes)`, the signature
 * SHA256withRSA under the certificate at PAYPAL-CERT-URL, which must be on an allowed host
 * (`*.paypal.com` against PayPal, the simulator's own origin in test mode) and is cached by URL.
 * Source: PayPal-node-SDK lib/resources/Notification.js at commit 01d007a (crc32.unsigned(body)).
 */
import crypto, { X509Certificate, type KeyObject } from 'node:crypto';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { ChannelUnavailable, MalformedMessageError, SignatureError } from '../../errors.ts';

/** PayPal documents no window; ±3 days matches its retry span (25 tries over 3 days). Our choice. */
export const TRANSMISSION_WINDOW_S = 3 * 86400;
const CERT_FETCH_TIMEOUT_MS = 10_000;
const MAX_CERT_BYTES = 32 * 1024;

// --- CRC-32 --------------------------------------------------------------------------------------

let table: Uint32Array | undefined;
function crc32Table(bytes: Uint8Array): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const b of bytes) crc = table[(crc ^ b) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Unsigned CRC-32 (IEEE) of the bytes: node:zlib's where it has one (Node ≥ 20.15), else a table. */
export function crc32(bytes: Uint8Array): number {
  const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
  return native ? native(bytes) >>> 0 : crc32Table(bytes);
}
export const crc32ByTable = crc32Table;

/** What PayPal signs for one delivery. The body is hashed as the bytes that came, never re-serialised. */
export function signedMessage(transmissionId: string, transmissionTime: string, webhookId: string, body: Uint8Array): string {
  return `${transmissionId}|${transmissionTime}|${webhookId}|${crc32(body)}`;
}

/** The simulator's side: the base64 SHA256withRSA signature of one delivery. */
export function signTransmission(privateKey: KeyObject, transmissionId: string, transmissionTime: string, webhookId: string, body: Uint8Array): string {
  return crypto.createSign('RSA-SHA256').update(signedMessage(transmissionId, transmissionTime, webhookId, body), 'utf8').sign(privateKey, 'base64');
}

// --- headers -------------------------------------------------------------------------------------

export interface Transmission {
  id: string;
  time: string;
  sig: string;
  certUrl: string;
  authAlgo: string;
}

/** Reads PayPal's transmission headers (lower-cased names); a missing one is malformed. */
export function transmissionOf(headers: Record<string, string | undefined>): Transmission {
  const h = (name: string) => {
    const v = headers[name] ?? headers[name.toUpperCase()];
    if (typeof v !== 'string' || !v || v.length > 2048) throw new MalformedMessageError(`PayPal webhook lacks the ${name.toUpperCase()} header`);
    return v.trim();
  };
  return { id: h('paypal-transmission-id'), time: h('paypal-transmission-time'), sig: h('paypal-transmission-sig'), certUrl: h('paypal-cert-url'), authAlgo: h('paypal-auth-algo') };
}

// --- certificate host rule ----------------------------------------------------------------------

/**
 * Where a signing certificate may come from. Against PayPal: https on a host ending in
 * `.paypal.com` (else PAYPAL-CERT-URL is an SSRF and a forged-key vector). Against a simulator
 * (any other base URL): its own origin and path only, since the operator trusts that host for
 * the whole API already.
 */
export type CertRule = { kind: 'paypal' } | { kind: 'origin'; origin: string; pathPrefix: string };

export function certUrlAllowed(rule: CertRule, certUrl: string): boolean {
  if (!URL.canParse(certUrl)) return false;
  const u = new URL(certUrl);
  if (u.username || u.password || u.hash) return false;
  if (rule.kind === 'paypal') return u.protocol === 'https:' && u.hostname.toLowerCase().endsWith('.paypal.com') && (u.port === '' || u.port === '443');
  return u.origin === rule.origin && u.pathname.startsWith(rule.pathPrefix);
}

// --- certificates --------------------------------------------------------------------------------

interface CachedCert {
  key: KeyObject;
  notAfter: number;
}
const certCache = new Map<string, CachedCert>();
const CERT_CACHE_MAX = 200;

/** The certificates of a PEM bundle, leaf first. */
export function certificatesOf(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.slice(0, 5).map((b) => new X509Certificate(b));
}

let roots: X509Certificate[] | undefined;
const publicRoots = () => (roots ??= tls.rootCertificates.map((pem) => new X509Certificate(pem)));

/**
 * Against PayPal the leaf must chain (through the bundle's intermediates) to a public root CA
 * that Node trusts, every certificate within its validity, and the leaf be issued to a
 * `*.paypal.com` name. `anchors` replaces Node's roots (tests).
 */
export function checkChain(chain: X509Certificate[], now: Date, anchors: X509Certificate[] = publicRoots()): void {
  const leaf = chain[0];
  if (!leaf) throw new SignatureError('PayPal certificate URL served no certificate');
  for (const c of chain) {
    if (new Date(c.validFrom) > now || new Date(c.validTo) < now) throw new SignatureError('PayPal signing certificate is outside its validity');
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(leaf.subject)?.[1]?.trim().toLowerCase() ?? '';
  if (!(cn === 'paypal.com' || cn.endsWith('.paypal.com'))) throw new SignatureError('PayPal signing certificate is not issued to a paypal.com name');
  let current = leaf;
  for (let depth = 0; depth < 6; depth++) {
    const anchor = anchors.find((a) => a.subject === current.issuer && current.verify(a.publicKey));
    if (anchor) return;
    const next = chain.find((c) => c !== current && c.subject === current.issuer && current.verify(c.publicKey));
    if (!next) break;
    current = next;
  }
  throw new SignatureError('PayPal signing certificate does not chain to a trusted root CA');
}

/** Fetches (or takes from the cache) the public key at an allowed certificate URL. */
export async function certificateKey(certUrl: string, opts: { requireChain: boolean; now?: Date; anchors?: X509Certificate[] }): Promise<KeyObject> {
  const now = opts.now ?? new Date();
  const hit = certCache.get(certUrl);
  if (hit && hit.notAfter > now.getTime()) return hit.key;
  let text: string;
  try {
    const res = await fetch(certUrl, { redirect: 'error', signal: AbortSignal.timeout(CERT_FETCH_TIMEOUT_MS) });
    const buf = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200 || buf.length > MAX_CERT_BYTES) throw new Error(`HTTP ${res.status}`);
    text = buf.toString('utf8');
  } catch {
    throw new ChannelUnavailable('PayPal webhook: the signing certificate could not be fetched');
  }
  let chain: X509Certificate[];
  try {
    chain = certificatesOf(text);
  } catch {
    throw new SignatureError('PayPal certificate URL served something that is not an X.509 certificate');
  }
  if (!chain.length) throw new SignatureError('PayPal certificate URL served no certificate');
  if (opts.requireChain) checkChain(chain, now, opts.anchors);
  else if (new Date(chain[0]!.validTo) < now || new Date(chain[0]!.validFrom) > now) throw new SignatureError('PayPal signing certificate is outside its validity');
  const entry = { key: chain[0]!.publicKey, notAfter: Math.min(new Date(chain[0]!.validTo).getTime(), now.getTime() + 86_400_000) };
  if (certCache.size >= CERT_CACHE_MAX) certCache.clear();
  certCache.set(certUrl, entry);
  return entry.key;
}

/** Forgets cached certificates (tests, key rotation at a simulator). */
export const clearCertificateCache = (): void => certCache.clear();

// --- verification --------------------------------------------------------------------------------

/** Whether the transmission time is an RFC 3339 instant within ±3 days of now. */
export function withinWindow(time: string, nowMs: number): boolean {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(time)) return false;
  const t = Date.parse(time);
  return Number.isFinite(t) && Math.abs(nowMs - t) <= TRANSMISSION_WINDOW_S * 1000;
}

/**
 * Verifies one delivery offline. Throws SignatureError (bad signature, disallowed cert host,
 * old transmission, other algorithm), MalformedMessageError (missing headers) or
 * ChannelUnavailable (the certificate could not be fetched: PayPal will retry).
 */
export async function verifyTransmission(opts: {
  headers: Record<string, string | undefined>;
  body: Uint8Array;
  webhookId: string;
  certRule: CertRule;
  nowMs?: number;
  anchors?: X509Certificate[];
}): Promise<Transmission> {
  const t = transmissionOf(opts.headers);
  if (t.authAlgo !== 'SHA256withRSA') throw new SignatureError(`PayPal webhook auth algorithm ${t.authAlgo.slice(0, 30)} is not SHA256withRSA`);
  const nowMs = opts.nowMs ?? Date.now();
  if (!withinWindow(t.time, nowMs)) throw new SignatureError('PayPal webhook transmission time is not within 3 days of now');
  if (!certUrlAllowed(opts.certRule, t.certUrl)) throw new SignatureError('PayPal webhook certificate URL is not on an allowed host');
  if (t.sig.length > 2048 || !/^[A-Za-z0-9+/]+={0,2}$/.test(t.sig)) throw new SignatureError('PayPal webhook signature is not base64');
  const key = await certificateKey(t.certUrl, { requireChain: opts.certRule.kind === 'paypal', now: new Date(nowMs), anchors: opts.anchors });
  let ok = false;
  try {
    ok = crypto.createVerify('RSA-SHA256').update(signedMessage(t.id, t.time, opts.webhookId, opts.body), 'utf8').verify(key, t.sig, 'base64');
  } catch {
    ok = false;
  }
  if (!ok) throw new SignatureError('PayPal webhook signature does not verify (transmission_id|transmission_time|webhook_id|crc32(body))');
  return t;
}

/**
 * The verify-webhook-signature postback's body with the raw event bytes spliced in: parsing and
 * re-serialising the event changes it (1.0 → 1) and PayPal answers FAILURE.
 */
export function postbackBody(t: Transmission, webhookId: string, rawBody: string): string {
  const head = JSON.stringify({ auth_algo: t.authAlgo, cert_url: t.certUrl, transmission_id: t.id, transmission_sig: t.sig, transmission_time: t.time, webhook_id: webhookId });
  return `${head.slice(0, -1)},"webhook_event":${rawBody}}`;
}
