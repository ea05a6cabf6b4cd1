import crypto from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { ApiError } from '../errors.ts';
import { authOf } from './auth.ts';
import { isUniqueViolation } from '../payments/repo.ts';
import { seal, unseal } from '../crypto.ts';

const aadOf = (s: { app_id: string; livemode: boolean; key: string }) => `idempotency:${s.app_id}:${s.livemode}:${s.key}`;

/** Stored responses are replayed for 24 h, as Stripe does. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as any)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * A key still 'processing' after this long belongs to a request that will not finish (the process
 * running it died); it is never taken over, since that request may have moved money.
 */
export const INTERRUPTED_AFTER_MS = 5 * 60_000;

/**
 * Idempotency-Key for POSTs: the first response (status and body) is stored and replayed; the same
 * key with other parameters is an idempotency_error; a request still running under the key is a 409.
 * The key is held until its request has answered, whatever the client does meanwhile: a client
 * that gave up and retries gets the 409, then the stored answer. Every answer is stored, 5xx too
 * (as Stripe does): a 5xx may come after money moved (a refund reserved and sent, then a failure
 * reading it back), and nothing here can tell, so a retry must not run the request again. Stored
 * bodies are sealed: some carry a secret shown once (a webhook endpoint's whsec_).
 */
export function idempotency(db: Knex, masterKey: Buffer): RequestHandler {
  return async (req, res, next) => {
    if (req.method !== 'POST') return next();
    const key = req.get('idempotency-key');
    if (key === undefined) return next();
    if (key.length === 0 || key.length > 255) {
      return next(new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Idempotency-Key must be 1–255 characters.', 'Idempotency-Key'));
    }
    const { appId, livemode } = authOf(res);
    const requestHash = crypto.createHash('sha256').update(`${req.method} ${req.originalUrl.split('?')[0]} ${canonical(req.body)}`).digest('hex');
    const scope = { app_id: appId, livemode, key };
    const now = Date.now();
    try {
      await db('idempotency_keys').insert({ ...scope, request_hash: requestHash, state: 'processing', created_ms: now });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      const row = await db('idempotency_keys').where(scope).first();
      if (row && row.state === 'done' && Number(row.created_ms) < now - IDEMPOTENCY_TTL_MS) {
        // An expired answer frees its key: take it over if nobody else did meanwhile.
        const n = await db('idempotency_keys').where({ ...scope, state: 'done', created_ms: row.created_ms })
          .update({ request_hash: requestHash, state: 'processing', response_status: null, response_body: null, created_ms: now });
        if (n !== 1) return next(inUse());
      } else if (!row) {
        return next(inUse());
      } else if (row.request_hash !== requestHash) {
        return next(new ApiError(400, 'idempotency_error', 'idempotency_key_reused',
          'Keys for idempotent requests can only be used with the same parameters they were first used with.', 'Idempotency-Key'));
      } else if (row.state !== 'done') {
        return next(Number(row.created_ms) < now - INTERRUPTED_AFTER_MS ? interrupted() : inUse());
      } else {
        res.set('Idempotent-Replayed', 'true');
        res.status(Number(row.response_status)).type('application/json').send(unseal(masterKey, row.response_body, aadOf(scope)));
        return;
      }
    }
    // The result is stored before the response leaves, so a client retrying at once gets the replay.
    // A client that went away changes nothing here: its request runs on and its answer is kept.
    // If storing fails the key stays 'processing' and retries get 409s: never a second run.
    const json = res.json.bind(res);
    res.json = (value: unknown) => {
      const body = JSON.stringify(value);
      db('idempotency_keys').where({ ...scope, state: 'processing' })
        .update({ state: 'done', response_status: res.statusCode, response_body: seal(masterKey, body, aadOf(scope)) })
        .then(() => json(value), () => json(value));
      return res;
    };
    next();
  };
}

const interrupted = () =>
  new ApiError(409, 'idempotency_error', 'idempotency_key_in_use',
    'The request with this Idempotency-Key was interrupted before it answered, and may have taken effect. '
    + 'Retrieve the object to see, and use a new key to try again.', 'Idempotency-Key');

const inUse = () =>
  new ApiError(409, 'idempotency_error', 'idempotency_key_in_use',
    'A request with this Idempotency-Key is still being processed. Retry after it completes.', 'Idempotency-Key');
