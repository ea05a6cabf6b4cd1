import crypto from 'node:crypto';

/** AES-256-GCM sealing of secrets at rest: `v1.<iv>.<tag>.<ciphertext>` in base64url. */
export function seal(key: Buffer, plaintext: string, aad = ''): string {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv, cipher.getAuthTag(), ct].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

/** Opens what seal() produced; the same aad must be given (it binds a secret to its row). */
export function unseal(key: Buffer, sealed: string, aad = ''): string {
  const [v, iv, tag, ct] = sealed.split('.');
  if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('unsupported sealed value');
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
}

/** SHA-256 hex, for API keys: they carry 192+ random bits, so a fast hash is enough. */
export function sha256Hex(value: string): string {
  return crypto.createHash('sha256').update(value).digest('hex');
}

const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

// Random bytes drawn from a pooled buffer: one getrandom call serves many ids (as randomUUID does).
let pool = Buffer.alloc(0);
let poolAt = 0;
/** Offset of n fresh bytes in the pool (refilled when fewer than n are left). */
function takeRandom(n: number): number {
  if (poolAt + n > pool.length) {
    pool = crypto.randomBytes(4096);
    poolAt = 0;
  }
  poolAt += n;
  return poolAt - n;
}

function nextRandomByte(): number {
  return pool[takeRandom(1)];
}

/** n random bytes as base64 (CSP nonces), from the same pool. */
export function randomBase64(n: number): string {
  const at = takeRandom(n);
  return pool.toString('base64', at, at + n);
}

/** Random base62 string of n characters (unbiased: bytes ≥ 248 are redrawn). */
export function randomId(n: number): string {
  let out = '';
  while (out.length < n) {
    const b = nextRandomByte();
    if (b < 248) out += alphabet[b % 62];
  }
  return out;
}

/**
 * Object id with its type prefix, e.g. pay_0Ofq3kT…: 8 base62 characters of the creation time in
 * ms, then 16 more (≈ 71 random bits after a 4-character sequence). Time-ordered ids append to
 * the primary-key index instead of landing on a random page of it, which keeps inserts cheap as
 * tables grow. Within one millisecond the sequence counts up, so ids made one after the other in
 * this process sort in the order they were made (a subscription's failed try, then its
 * cancellation, written in the same ms, list in that order).
 */
let lastIdMs = -1;
let lastSeq = 0;
const SEQ_SPAN = 62 ** 4;
export function newId(prefix: string): string {
  let t = Date.now();
  if (t < lastIdMs) t = lastIdMs; // the wall clock stepped back: stay on the last ms, counting up
  if (t === lastIdMs && lastSeq + 1 < SEQ_SPAN) {
    lastSeq += 1;
  } else {
    if (t === lastIdMs) t += 1; // the sequence ran out: borrow the next ms
    lastIdMs = t;
    // Start low in the span so the count has room, but not at a guessable 0.
    lastSeq = Math.floor(Math.random() * (SEQ_SPAN / 2));
  }
  let time = '';
  for (let i = 0; i < 8; i++) {
    time = alphabet[t % 62] + time;
    t = Math.floor(t / 62);
  }
  let seq = '';
  for (let i = 0, n = lastSeq; i < 4; i++) {
    seq = alphabet[n % 62] + seq;
    n = Math.floor(n / 62);
  }
  return `${prefix}_${time}${seq}${randomId(12)}`;
}

export function timingSafeEqualStr(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && crypto.timingSafeEqual(ab, bb);
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
