import crypto from 'node:crypto';
import { promisify } from 'node:util';

/** Console passwords: scrypt, stored as `scrypt$N$r$p$salt$hash` (salt and hash in base64). */

const scrypt = promisify(crypto.scrypt) as (password: string, salt: Buffer, keylen: number, options: crypto.ScryptOptions) => Promise<Buffer>;

/** OWASP's scrypt minimum (N=2^14, r=8, p=1); ~16 MiB and tens of milliseconds per hash. */
export const SCRYPT_PARAMS = { N: 16384, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const KEY_BYTES = 64;
export const MIN_PASSWORD_LENGTH = 12;
/** Long enough for any passphrase, short enough that hashing a pasted novel cannot tie up the server. */
export const MAX_PASSWORD_LENGTH = 1024;

// Upper bounds on what a stored hash may ask for, so a tampered row cannot make a login burn memory.
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;

export class WeakPasswordError extends Error {
  override name = 'WeakPasswordError';
}

/** Refuses passwords shorter than 12 characters (NIST SP 800-63B: length is what counts). */
export function checkPasswordStrength(password: string): void {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) throw new WeakPasswordError(`the password must be at least ${MIN_PASSWORD_LENGTH} characters long`);
  if (length > MAX_PASSWORD_LENGTH) throw new WeakPasswordError(`the password must be at most ${MAX_PASSWORD_LENGTH} characters long`);
}

function derive(password: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  // maxmem must cover 128·N·r bytes plus scrypt's own overhead, or node refuses larger parameters.
  return scrypt(password.normalize('NFC'), salt, KEY_BYTES, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
}

/** Hashes a password with a fresh 16-byte salt. */
export async function hashPassword(password: string): Promise<string> {
  const { N, r, p } = SCRYPT_PARAMS;
  const salt = crypto.randomBytes(SALT_BYTES);
  const key = await derive(password, salt, N, r, p);
  return ['scrypt', N, r, p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** Compares in constant time; a malformed stored hash is a mismatch, never an exception. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map((v) => (/^\d{1,8}$/.test(v) ? Number(v) : NaN));
  if (!(N >= 2 && N <= MAX_N && (N & (N - 1)) === 0 && r >= 1 && r <= MAX_R && p >= 1 && p <= MAX_P)) return false;
  const salt = Buffer.from(parts[4], 'base64');
  const expected = Buffer.from(parts[5], 'base64');
  if (salt.length < 8 || expected.length !== KEY_BYTES) return false;
  if (password.length > MAX_PASSWORD_LENGTH) return false;
  const actual = await derive(password, salt, N, r, p);
  return crypto.timingSafeEqual(actual, expected);
}

/**
 * What logins for unknown emails verify against, so they take as long as a wrong password for a
 * real user (no account enumeration by timing): a well-formed hash with a random key. Checking
 * it costs one full scrypt like any other, and no password matches it; making it costs none.
 */
export const DUMMY_PASSWORD_HASH = [
  'scrypt', SCRYPT_PARAMS.N, SCRYPT_PARAMS.r, SCRYPT_PARAMS.p,
  crypto.randomBytes(SALT_BYTES).toString('base64'), crypto.randomBytes(KEY_BYTES).toString('base64'),
].join('$');
