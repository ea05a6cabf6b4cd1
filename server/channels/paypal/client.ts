/**
 * The HTTP side of the PayPal adapter: a small fetch client (the official server SDK hard-codes
 * PayPal's two hosts and cannot target a simulator). OAuth client-credentials tokens are cached
 * per (client_id, base URL) until a minute before they expire and fetched again once on a 401;
 * neither the secret nor a token is ever logged or put in an error message.
 */
import crypto from 'node:crypto';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable } from '../../errors.ts';
import { errorOf, type PaypalError } from './transform.ts';
import type { PaypalCredentials } from './index.ts';

const REQUEST_TIMEOUT_MS = 15_000;
/** A token is dropped this long before PayPal would expire it (clock skew, slow requests). */
const TOKEN_MARGIN_S = 60;

interface CachedToken {
  token: string;
  expiresAtMs: number;
  /** The secret the token was issued for: a rotated secret gets a new token. */
  secretHash: string;
}
const tokens = new Map<string, CachedToken>();
const inFlight = new Map<string, Promise<CachedToken>>();
const tokenKey = (cred: PaypalCredentials) => `${cred.baseUrl}\n${cred.clientId}`;
const hashOf = (secret: string) => crypto.createHash('sha256').update(secret).digest('hex');

/** Forgets every cached token (tests). */
export const clearTokenCache = (): void => tokens.clear();
/** How many tokens are cached (tests). */
export const cachedTokenCount = (): number => tokens.size;

async function send(url: string, init: RequestInit, op: string): Promise<{ status: number; json: unknown; text: string; debugId: string | null }> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    text = await res.text();
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    throw new ChannelUnavailable(`PayPal ${op}: ${timedOut ? `no answer within ${REQUEST_TIMEOUT_MS / 1000}s` : 'API unreachable'}`);
  }
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, debugId: res.headers.get('paypal-debug-id') };
}

async function fetchToken(cred: PaypalCredentials): Promise<CachedToken> {
  const basic = Buffer.from(`${cred.clientId}:${cred.clientSecret.reveal()}`).toString('base64');
  const a = await send(`${cred.baseUrl}/v1/oauth2/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: 'grant_type=client_credentials',
  }, 'token');
  if (a.status === 401 || a.status === 403) {
    const e = errorOf(a.status, a.json, a.debugId);
    throw new ChannelConfigError(`PayPal config: client_id / client_secret refused (${e.name}${e.debugId ? `, debug_id ${e.debugId}` : ''})`);
  }
  const body = a.json as { access_token?: unknown; expires_in?: unknown; token_type?: unknown } | undefined;
  if (a.status !== 200 || typeof body?.access_token !== 'string' || !body.access_token) {
    throw new ChannelUnavailable(`PayPal token: answered HTTP ${a.status}${a.json ? '' : ' without JSON'}`);
  }
  const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 300;
  return { token: body.access_token, expiresAtMs: Date.now() + Math.max(0, expiresIn - TOKEN_MARGIN_S) * 1000, secretHash: hashOf(cred.clientSecret.reveal()) };
}

/** A valid token: from the cache, or fetched once for every caller that asks at the same time. */
async function accessToken(cred: PaypalCredentials, refresh = false): Promise<string> {
  const key = tokenKey(cred);
  const hit = tokens.get(key);
  if (!refresh && hit && hit.expiresAtMs > Date.now() && hit.secretHash === hashOf(cred.clientSecret.reveal())) return hit.token;
  let load = inFlight.get(key);
  if (!load) {
    load = fetchToken(cred).finally(() => inFlight.delete(key));
    inFlight.set(key, load);
  }
  const fresh = await load;
  if (tokens.size > 1000) tokens.clear();
  tokens.set(key, fresh);
  return fresh.token;
}

export type Answer =
  | { ok: true; status: number; data: Record<string, unknown> }
  | { ok: false; status: number; error: PaypalError };

/**
 * One REST call with a bearer token. POSTs carry their PayPal-Request-Id (idempotency) and
 * `Prefer: return=representation`. A 401 gets one new token and one retry. Throws
 * ChannelUnavailable on network faults, 5xx and 429, and on a 2xx that is not JSON.
 */
export async function callApi(
  cred: PaypalCredentials,
  op: string,
  method: 'GET' | 'POST',
  path: string,
  opts: { body?: Record<string, unknown>; rawBody?: string; requestId?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const attempt = async (token: string) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json', ...opts.headers };
    if (method === 'POST') {
      headers['content-type'] = 'application/json';
      headers.prefer = 'return=representation';
      if (opts.requestId) headers['paypal-request-id'] = opts.requestId.slice(0, 108);
    }
    return send(`${cred.baseUrl}${path}`, { method, headers, body: method === 'POST' ? opts.rawBody ?? JSON.stringify(opts.body ?? {}) : undefined }, op);
  };
  let a = await attempt(await accessToken(cred));
  if (a.status === 401) a = await attempt(await accessToken(cred, true));
  if (a.status >= 200 && a.status < 300) {
    if (!a.json || typeof a.json !== 'object' || Array.isArray(a.json)) throw new ChannelUnavailable(`PayPal ${op}: unreadable answer (HTTP ${a.status})`);
    return { ok: true, status: a.status, data: a.json as Record<string, unknown> };
  }
  const error = errorOf(a.status, a.json, a.debugId);
  if (a.status >= 500 || a.status === 429 || (a.status >= 300 && a.status < 400)) throw new ChannelUnavailable(describe(op, { status: a.status, error }));
  if (a.status === 401 || a.status === 403) throw new ChannelConfigError(describe(op, { status: a.status, error }));
  return { ok: false, status: a.status, error };
}

export function describe(op: string, a: { status: number; error: PaypalError }): string {
  const e = a.error;
  return `PayPal ${op}: HTTP ${a.status} ${e.issue ?? e.name}${e.description || e.message ? `: ${(e.description || e.message).slice(0, 200)}` : ''}${e.debugId ? ` (debug_id ${e.debugId})` : ''}`;
}

/** A refused request that is neither a decline nor a known state: a typed fault naming PayPal's issue. */
export const faultOf = (op: string, a: { status: number; error: PaypalError }): Error =>
  new ChannelRequestError(a.error.issue ?? a.error.name, describe(op, a));
