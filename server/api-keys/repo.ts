import type { Knex } from 'knex';
import { z } from 'zod';
import { newId, randomId, sha256Hex } from '../crypto.ts';
import { bool } from '../db.ts';

/** The api_keys table: secrets are stored as their SHA-256 only; the hint tells keys apart. */

export interface ApiKeyRow {
  id: string;
  app_id: string;
  livemode: boolean;
  key_hint: string;
  created: number;
  expires_at: number | null;
  revoked_at: number | null;
  rolled_to: string | null;
}

export const apiKeyObjectSchema = z.object({
  id: z.string(),
  object: z.literal('api_key'),
  livemode: z.boolean(),
  /** The key's beginning and end, e.g. `sk_test_AbCd…wXyZ`. */
  hint: z.string(),
  created: z.number().int(),
  /** When a rolled key stops working (unix seconds); null when it does not expire. */
  expires_at: z.number().int().nullable(),
  revoked_at: z.number().int().nullable(),
  /** The key that replaced this one when it was rolled. */
  rolled_to: z.string().nullable(),
  status: z.enum(['active', 'expiring', 'expired', 'revoked']),
}).strict().meta({ id: 'ApiKey' });
export type ApiKeyObject = z.infer<typeof apiKeyObjectSchema>;

export const apiKeyWithSecretSchema = apiKeyObjectSchema.extend({
  /** The secret key itself: in this answer only. */
  secret: z.string(),
}).strict().meta({ id: 'ApiKeyWithSecret' });

/**
 * A new secret key of an app and mode, and the api_keys row that stores it: its SHA-256 and a
 * hint (its beginning and end), never the secret itself.
 */
export function newApiKey(appId: string, livemode: boolean, created: number) {
  const secret = `sk_${livemode ? 'live' : 'test'}_${randomId(32)}`;
  const row = { id: newId('key'), app_id: appId, livemode, key_hash: sha256Hex(secret), key_hint: secret.slice(0, 12) + '…' + secret.slice(-4), created };
  return { secret, row };
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export function apiKeyFromRow(r: any): ApiKeyRow {
  return {
    id: r.id, app_id: r.app_id, livemode: bool(r.livemode), key_hint: r.key_hint, created: Number(r.created),
    expires_at: num(r.expires_at), revoked_at: num(r.revoked_at), rolled_to: r.rolled_to ?? null,
  };
}

export function toApiKeyObject(k: ApiKeyRow, nowS: number): ApiKeyObject {
  const status = k.revoked_at !== null ? 'revoked' : k.expires_at === null ? 'active' : k.expires_at > nowS ? 'expiring' : 'expired';
  return {
    id: k.id, object: 'api_key', livemode: k.livemode, hint: k.key_hint, created: k.created,
    expires_at: k.expires_at, revoked_at: k.revoked_at, rolled_to: k.rolled_to, status,
  };
}

/** A usable key: not revoked and not past its expiry. */
export function usable(q: Knex.QueryBuilder, nowS: number): Knex.QueryBuilder {
  return q.whereNull('revoked_at').where((w) => w.whereNull('expires_at').orWhere('expires_at', '>', nowS));
}

export async function findApiKey(db: Knex | Knex.Transaction, appId: string, livemode: boolean, id: string): Promise<ApiKeyRow | undefined> {
  const r = await db('api_keys').where({ app_id: appId, livemode, id }).first();
  return r ? apiKeyFromRow(r) : undefined;
}

/** Keys of an app (and mode, when given), usable ones first, newest first. */
export async function listApiKeys(db: Knex, appId: string, livemode?: boolean): Promise<ApiKeyRow[]> {
  const q = db('api_keys').where({ app_id: appId });
  if (livemode !== undefined) q.where({ livemode });
  const rows = await q.orderBy([{ column: 'livemode' }, { column: 'created', order: 'desc' }, { column: 'id', order: 'desc' }]);
  return rows.map(apiKeyFromRow);
}

/** How many keys of this app and mode still work, `except` one. */
export async function countOtherUsable(db: Knex | Knex.Transaction, appId: string, livemode: boolean, except: string, nowS: number): Promise<number> {
  const r = await usable(db('api_keys').where({ app_id: appId, livemode }).whereNot('id', except), nowS).count({ n: '*' });
  return Number(r[0].n);
}
