import type { Knex } from 'knex';
import { newId } from '../crypto.ts';

/**
 * The audit log (issue 16): every change in the console, and the API's changes of keys and webhook
 * endpoints, with who made it, from which IP and when. A summary is a small JSON object of what
 * changed; anything that looks like a secret is dropped before it is written (scrubSummary).
 */

export type ActorType = 'console_user' | 'api_key' | 'cli';

export interface AuditInput {
  appId: string;
  livemode: boolean | null;
  actor: { type: ActorType; id?: string | null; email?: string | null };
  action: string;
  object?: { type?: string | null; id?: string | null };
  summary?: Record<string, unknown>;
  ip?: string | null;
}

export interface AuditEntry {
  id: string;
  app_id: string;
  livemode: boolean | null;
  actor_type: ActorType;
  actor_id: string | null;
  actor_email: string | null;
  action: string;
  object_type: string | null;
  object_id: string | null;
  summary: Record<string, unknown>;
  ip: string | null;
  created_ms: number;
}

/** Keys whose values are never logged, whatever route sends them. */
const SECRET_KEY = /pass|secret|token|csrf|config|private|cert|key_?value|credential|signature|^sk_|whsec/i;
/** Values that are secrets whatever their key: API keys, signing secrets, PEM blocks. */
const SECRET_VALUE = /sk_(test|live)_[A-Za-z0-9]{8,}|whsec_[A-Za-z0-9+/=]{8,}|-----BEGIN [A-Z ]+-----/;
const MAX_VALUE_CHARS = 300;

/** A summary safe to store: no secret-named keys, no secret-looking values, bounded sizes. */
export function scrubSummary(summary: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(summary).slice(0, 30)) {
    if (SECRET_KEY.test(k) || v === undefined) continue;
    if (Array.isArray(v)) {
      const items = v.filter((x) => typeof x === 'string' || typeof x === 'number').map(String).filter((x) => !SECRET_VALUE.test(x)).slice(0, 30);
      out[k] = items.map((x) => x.slice(0, MAX_VALUE_CHARS));
    } else if (v === null || typeof v === 'number' || typeof v === 'boolean') {
      out[k] = v;
    } else if (typeof v === 'string') {
      if (!SECRET_VALUE.test(v)) out[k] = withoutUrlSecrets(v).slice(0, MAX_VALUE_CHARS);
    } else if (typeof v === 'object') {
      out[k] = scrubSummary(v as Record<string, unknown>);
    }
  }
  return out;
}

/** A URL's user:password@ and query (a webhook URL may carry a token in either) are not logged. */
function withoutUrlSecrets(v: string): string {
  return v.replace(/\b(https?:\/\/)[^\s/@]*@/gi, '$1').replace(/(https?:\/\/[^\s?#]*)[?#][^\s]*/gi, '$1');
}

export async function recordAudit(db: Knex, input: AuditInput, now = Date.now()): Promise<string> {
  const id = newId('aud');
  await db('audit_log').insert({
    id,
    app_id: input.appId,
    livemode: input.livemode,
    actor_type: input.actor.type,
    actor_id: input.actor.id ?? null,
    actor_email: input.actor.email ?? null,
    action: input.action.slice(0, 64),
    object_type: input.object?.type ?? null,
    object_id: input.object?.id?.slice(0, 64) ?? null,
    summary: JSON.stringify(scrubSummary(input.summary)),
    ip: input.ip?.slice(0, 64) ?? null,
    created_ms: now,
  });
  return id;
}

export interface AuditFilters {
  /** A console user's id or email, or an API key's id. */
  actor?: string;
  /** An action, or a prefix ending in "." (payment. → payment.refund, payment.close). */
  action?: string;
  fromMs?: number;
  toMs?: number;
}

/** Newest first by (created_ms, id); `before` is the last entry of the previous page. */
export function auditQuery(db: Knex, appId: string, f: AuditFilters): Knex.QueryBuilder {
  const q = db('audit_log').where({ app_id: appId });
  if (f.actor) q.where((w) => w.where('actor_id', f.actor!).orWhere('actor_email', f.actor!.toLowerCase()));
  if (f.action) {
    if (f.action.endsWith('.')) q.where('action', 'like', `${f.action.replace(/[%_\\]/g, '\\$&')}%`);
    else q.where('action', f.action);
  }
  if (f.fromMs !== undefined) q.where('created_ms', '>=', f.fromMs);
  if (f.toMs !== undefined) q.where('created_ms', '<', f.toMs);
  return q;
}

export async function auditPage(db: Knex, appId: string, f: AuditFilters, limit: number, before?: { created_ms: number; id: string }): Promise<AuditEntry[]> {
  const q = auditQuery(db, appId, f);
  if (before) q.where((w) => w.where('created_ms', '<', before.created_ms).orWhere((x) => x.where('created_ms', before.created_ms).where('id', '<', before.id)));
  const rows = await q.orderBy([{ column: 'created_ms', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit);
  return rows.map(auditFromRow);
}

export async function auditEntry(db: Knex, appId: string, id: string): Promise<AuditEntry | undefined> {
  const row = await db('audit_log').where({ app_id: appId, id }).first();
  return row ? auditFromRow(row) : undefined;
}

/** Distinct action names of an app, for the filter's choices. */
export async function auditActions(db: Knex, appId: string): Promise<string[]> {
  return (await db('audit_log').where({ app_id: appId }).distinct('action').orderBy('action').limit(200)).map((r) => r.action);
}

export function auditFromRow(r: any): AuditEntry {
  let summary: Record<string, unknown> = {};
  try {
    summary = JSON.parse(r.summary);
  } catch {
    // A summary is always written as JSON; an unreadable one shows as empty rather than failing the page.
  }
  return {
    id: r.id, app_id: r.app_id, livemode: r.livemode === null || r.livemode === undefined ? null : r.livemode === true || r.livemode === 1,
    actor_type: r.actor_type, actor_id: r.actor_id ?? null, actor_email: r.actor_email ?? null, action: r.action,
    object_type: r.object_type ?? null, object_id: r.object_id ?? null, summary, ip: r.ip ?? null, created_ms: Number(r.created_ms),
  };
}
