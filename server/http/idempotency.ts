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
 * Idempotency-Key for POSTs: the first response (status and body) is stored and replayed; the same
 * key with other parameters is an idempotency_error; a request still running under the key is a 409.
 * Responses of 5xx are not stored, so a retry can go through. Stored bodies are sealed: some carry
 * a secret shown once (a webhook endpoint's whsec_).
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
      if (row && Number(row.created_ms) < now - IDEMPOTENCY_TTL_MS) {
        // An expired key is free again: take it over if nobody else did meanwhile.
        const n = await db('idempotency_keys').where({ ...scope, created_ms: row.created_ms })
          .update({ request_hash: requestHash, state: 'processing', response_status: null, response_body: null, created_ms: now });
        if (n !== 1) return next(inUse());
      } else if (!row) {
        return next(inUse());
      } else if (row.request_hash !== requestHash) {
        return next(new ApiError(400, 'idempotency_error', 'idempotency_key_reused',
          'Keys for idempotent requests can only be used with the same parameters they were first used with.', 'Idempotency-Key'));
      } else if (row.state !== 'done') {
        return next(inUse());
      } else {
        res.set('Idempotent-Replayed', 'true');
        res.status(Number(row.response_status)).type('application/json').send(unseal(masterKey, row.response_body, aadOf(scope)));
        return;
      }
    }
    // The result is stored before the response leaves, so a client retrying at once gets the replay.
    const json = res.json.bind(res);
    res.json = (value: unknown) => {
      const status = res.statusCode;
      const body = JSON.stringify(value);
      const q = status >= 500
        ? db('idempotency_keys').where(scope).delete()
        : db('idempotency_keys').where(scope).update({ state: 'done', response_status: status, response_body: seal(masterKey, body, aadOf(scope)) });
      q.then(() => json(value), () => json(value));
      return res;
    };
    res.on('close', () => {
      // A request that ended without a JSON answer (client gone, crash) frees its key.
      if (!res.writableEnded) db('idempotency_keys').where({ ...scope, state: 'processing' }).delete().catch(() => undefined);
    });
    next();
  };
}

const inUse = () =>
  new ApiError(409, 'idempotency_error', 'idempotency_key_in_use',
    'A request with this Idempotency-Key is still being processed. Retry after it completes.', 'Idempotency-Key');
