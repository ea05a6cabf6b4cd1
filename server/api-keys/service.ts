import type { Knex } from 'knex';
import { z } from 'zod';
import { nowSeconds } from '../crypto.ts';
import { invalid, notFound } from '../errors.ts';
import { forgetCachedApiKeys } from '../http/auth.ts';
import { apiKeyFromRow, countOtherUsable, findApiKey, listApiKeys, newApiKey, toApiKeyObject, usable, type ApiKeyObject } from './repo.ts';

/**
 * Secret keys of an app: create, roll (the old key keeps working for up to 7 days beside the new
 * one, so the merchant can deploy the new key first), revoke. A secret exists only in the answer
 * that made it; the table holds its SHA-256 and a hint. No req/res here: the API, the console and
 * the CLI call these.
 */

/** The longest a rolled key may keep working: 7 days. */
export const MAX_ROLL_OVERLAP_S = 7 * 86_400;

export const rollApiKeySchema = z.object({
  /** Seconds the old key keeps working; 0 stops it now. */
  expires_in: z.number().int().min(0).max(MAX_ROLL_OVERLAP_S).default(0),
}).strict();

export const createApiKeySchema = z.object({}).strict();

export interface KeyScope { appId: string; livemode: boolean }

async function insertKey(trx: Knex | Knex.Transaction, scope: KeyScope, created: number): Promise<{ id: string; secret: string }> {
  const { secret, row } = newApiKey(scope.appId, scope.livemode, created);
  await trx('api_keys').insert(row);
  return { id: row.id, secret };
}

/**
 * Locks the app's row on PostgreSQL for the rest of the transaction, so that two revocations of
 * an app's last two keys cannot both see the other one still usable (SQLite runs one writer).
 */
async function lockApp(trx: Knex.Transaction, appId: string): Promise<void> {
  await trx('apps').where({ id: appId }).forUpdate().first('id');
}

export async function listKeys(db: Knex, scope: KeyScope): Promise<{ object: 'list'; url: string; data: ApiKeyObject[]; has_more: false }> {
  const now = nowSeconds();
  return { object: 'list', url: '/v1/api_keys', data: (await listApiKeys(db, scope.appId, scope.livemode)).map((k) => toApiKeyObject(k, now)), has_more: false };
}

export async function retrieveKey(db: Knex, scope: KeyScope, id: string): Promise<ApiKeyObject> {
  const k = await findApiKey(db, scope.appId, scope.livemode, id);
  if (!k) throw notFound('api_key', id);
  return toApiKeyObject(k, nowSeconds());
}

/** A new key of the scope's mode beside the others. */
export async function createKey(db: Knex, scope: KeyScope): Promise<ApiKeyObject & { secret: string }> {
  const created = nowSeconds();
  const { id, secret } = await insertKey(db, scope, created);
  const k = (await findApiKey(db, scope.appId, scope.livemode, id))!;
  return { ...toApiKeyObject(k, created), secret };
}

/**
 * Rolls key `id`: a new key is made, and the old one works for `expires_in` more seconds (0: it
 * stops now). A key already rolled, expired or revoked is refused: roll its successor.
 */
export async function rollKey(db: Knex, scope: KeyScope, id: string, input: z.input<typeof rollApiKeySchema>): Promise<{ rolled: ApiKeyObject; key: ApiKeyObject & { secret: string } }> {
  const { expires_in } = rollApiKeySchema.parse(input);
  const out = await db.transaction(async (trx) => {
    const now = nowSeconds();
    const old = await findApiKey(trx, scope.appId, scope.livemode, id);
    if (!old) throw notFound('api_key', id);
    const { id: newKeyId, secret } = await insertKey(trx, scope, now);
    // Conditional: of two rolls of one key, one wins; the other changes nothing.
    const n = await usable(trx('api_keys').where({ id, app_id: scope.appId, livemode: scope.livemode }).whereNull('rolled_to'), now)
      .update({ expires_at: now + expires_in, rolled_to: newKeyId });
    if (n !== 1) throw invalid('api_key_not_active', `The key ${id} was already rolled, has expired or was revoked; roll its successor.`, 'id');
    const rolled = apiKeyFromRow(await trx('api_keys').where({ id }).first());
    const fresh = apiKeyFromRow(await trx('api_keys').where({ id: newKeyId }).first());
    return { rolled: toApiKeyObject(rolled, now), key: { ...toApiKeyObject(fresh, now), secret } };
  });
  forgetCachedApiKeys();
  return out;
}

/** Revokes key `id` now. The app's last working key of a mode is refused: roll it instead. */
export async function revokeKey(db: Knex, scope: KeyScope, id: string): Promise<ApiKeyObject> {
  const out = await db.transaction(async (trx) => {
    await lockApp(trx, scope.appId);
    const now = nowSeconds();
    const k = await findApiKey(trx, scope.appId, scope.livemode, id);
    if (!k) throw notFound('api_key', id);
    if (k.revoked_at !== null) return toApiKeyObject(k, now);
    if ((await countOtherUsable(trx, scope.appId, scope.livemode, id, now)) === 0) {
      throw invalid('last_api_key', `The key ${id} is the app's last working ${scope.livemode ? 'live' : 'test'} key; roll it instead of revoking it.`, 'id');
    }
    await trx('api_keys').where({ id }).whereNull('revoked_at').update({ revoked_at: now });
    return toApiKeyObject(apiKeyFromRow(await trx('api_keys').where({ id }).first()), now);
  });
  forgetCachedApiKeys();
  return out;
}
