import { Router, type Request } from 'express';
import type { Deps } from '../deps.ts';
import { auditActions, auditEntry, auditPage, type AuditFilters } from '../audit/repo.ts';
import { auditCsv } from '../audit/csv.ts';
import { beijingMidnight } from './format.ts';
import { sendCsv } from './csv-response.ts';
import { one, renderPage, sessionOf } from './page.ts';

const PAGE_SIZE = 50;
const DAY_MS = 86_400_000;
const datePattern = /^\d{4}-\d{2}-\d{2}$/;

const msOf = (date: string) => {
  const s = datePattern.test(date) ? beijingMidnight(date) : undefined;
  return s === undefined ? undefined : s * 1000;
};

/** The filters of the page and the CSV: actor (id or email), action (or a prefix ending in "."), from/to Beijing dates. */
function filtersOf(req: Request): { filters: AuditFilters; form: Record<string, string> } {
  const actor = one(req.query.actor)?.trim().slice(0, 254) ?? '';
  const action = one(req.query.action)?.trim().slice(0, 64) ?? '';
  const from = one(req.query.from)?.trim() ?? '';
  const to = one(req.query.to)?.trim() ?? '';
  const fromMs = msOf(from);
  const toStart = msOf(to);
  return {
    filters: { actor: actor || undefined, action: /^[a-z0-9_.]+$/.test(action) ? action : undefined, fromMs, toMs: toStart === undefined ? undefined : toStart + DAY_MS },
    form: { actor, action, from: fromMs === undefined ? '' : from, to: toStart === undefined ? '' : to },
  };
}

/** /console/audit: who changed what, when and from where, newest first; and its CSV, streamed. */
export function createAuditPages(deps: Deps): Router {
  const r = Router();

  r.get('/', async (req, res) => {
    const appId = sessionOf(res).appId;
    const { filters, form } = filtersOf(req);
    const beforeId = one(req.query.before);
    const before = beforeId && /^aud_[A-Za-z0-9]{1,60}$/.test(beforeId) ? await auditEntry(deps.db, appId, beforeId) : undefined;
    const rows = await auditPage(deps.db, appId, filters, PAGE_SIZE + 1, before);
    const entries = rows.slice(0, PAGE_SIZE);
    renderPage(res, 'audit', {
      title: 'Audit log',
      section: 'audit',
      entries,
      form,
      actions: await auditActions(deps.db, appId),
      older: rows.length > PAGE_SIZE ? entries[entries.length - 1]!.id : undefined,
      paged: Boolean(before),
    });
  });

  r.get('/export.csv', async (req, res) => {
    const appId = sessionOf(res).appId;
    const { filters } = filtersOf(req);
    await sendCsv(res, auditCsv(deps.db, appId, filters), `checkstand-audit-${appId}.csv`, deps.logger, 'audit');
  });

  return r;
}
