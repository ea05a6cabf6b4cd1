import type { Knex } from 'knex';
import { z } from 'zod';
import { newId, nowSeconds } from '../crypto.ts';
import { newApiKey } from '../api-keys/repo.ts';
import { parseJson } from '../db.ts';
import { originSchema } from './origins.ts';

export { originSchema };

export interface CreatedApp {
  app_id: string;
  name: string;
  secret_key: string;
  /** Absent for an app made without live mode (the demo app). */
  live_secret_key?: string;
  allowed_origins: string[];
}

/**
 * Creates an app with a test and (unless `live` is false) a live secret key; only their hashes
 * are stored, so the keys exist only in this answer.
 */
export async function createApp(db: Knex, input: { name: string; origins?: string[]; live?: boolean }): Promise<CreatedApp> {
  const name = z.string().trim().min(1).max(200).parse(input.name);
  const origins = z.array(originSchema).parse(input.origins ?? []);
  const id = newId('app');
  const created = nowSeconds();
  const testKey = newApiKey(id, false, created);
  const liveKey = input.live === false ? undefined : newApiKey(id, true, created);
  await db.transaction(async (trx) => {
    await trx('apps').insert({ id, name, allowed_origins: JSON.stringify(origins), created });
    await trx('api_keys').insert([testKey.row, ...(liveKey ? [liveKey.row] : [])]);
  });
  return { app_id: id, name, secret_key: testKey.secret, ...(liveKey ? { live_secret_key: liveKey.secret } : {}), allowed_origins: origins };
}

export interface AppRow {
  id: string;
  name: string;
  allowedOrigins: string[];
}

const appCache = new WeakMap<Knex, Map<string, { app: AppRow; at: number }>>();
const APP_CACHE_MS = 30_000;

/** An app's name and registered origins; cached for 30 s (they change rarely; the cashier reads them on every page). */
export async function getApp(db: Knex, id: string): Promise<AppRow | undefined> {
  let cache = appCache.get(db);
  if (!cache) appCache.set(db, (cache = new Map()));
  const hit = cache.get(id);
  if (hit && Date.now() - hit.at < APP_CACHE_MS) return hit.app;
  const row = await db('apps').where({ id }).first();
  if (!row) return undefined;
  const app = { id: row.id, name: row.name, allowedOrigins: parseJson<string[]>(row.allowed_origins, []) };
  if (cache.size > 10_000) cache.clear();
  cache.set(id, { app, at: Date.now() });
  return app;
}
