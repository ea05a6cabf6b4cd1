import type { Request, Response } from 'express';
import type { Knex } from 'knex';
import { authOf } from '../http/auth.ts';
import { recordAudit } from './repo.ts';

/**
 * An API change in the audit log, made by the calling key (res.locals.apiKeyId, set by apiKeyAuth):
 * the routes of keys and webhook endpoints call it once their change has succeeded.
 */
export async function auditApiChange(
  db: Knex,
  req: Request,
  res: Response,
  entry: { action: string; object: { type: string; id: string }; summary?: Record<string, unknown> },
): Promise<void> {
  const auth = authOf(res);
  await recordAudit(db, {
    appId: auth.appId,
    livemode: auth.livemode,
    actor: { type: 'api_key', id: (res.locals.apiKeyId as string | undefined) ?? null },
    action: entry.action,
    object: entry.object,
    summary: entry.summary,
    ip: req.ip ?? null,
  });
}
