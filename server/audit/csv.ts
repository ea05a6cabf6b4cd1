import type { Knex } from 'knex';
import { auditPage, type AuditEntry, type AuditFilters } from './repo.ts';

/** Rows per query while the CSV streams: few queries, flat memory, no query held open between them. */
const CSV_BATCH = 500;

const columns = ['time_utc', 'id', 'livemode', 'actor_type', 'actor_id', 'actor_email', 'action', 'object_type', 'object_id', 'summary', 'ip'];

/** A CSV cell; a text starting with = + - @ is prefixed with ' so a spreadsheet does not run it (OWASP "CSV injection"). */
function cell(value: string | number | boolean | null): string {
  let s = value === null ? '' : String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function line(e: AuditEntry): string {
  return [
    new Date(e.created_ms).toISOString(), e.id, e.livemode === null ? '' : e.livemode ? 'live' : 'test', e.actor_type, e.actor_id, e.actor_email,
    e.action, e.object_type, e.object_id, JSON.stringify(e.summary), e.ip,
  ].map(cell).join(',') + '\r\n';
}

/** The filtered audit log as CSV chunks, newest first, read a batch at a time as the client takes them. */
export async function* auditCsv(db: Knex, appId: string, filters: AuditFilters, batch = CSV_BATCH): AsyncGenerator<string> {
  let chunk = '\uFEFF' + columns.join(',') + '\r\n';
  let before: AuditEntry | undefined;
  for (;;) {
    const rows = await auditPage(db, appId, filters, batch, before);
    for (const e of rows) chunk += line(e);
    yield chunk;
    chunk = '';
    if (rows.length < batch) return;
    before = rows[rows.length - 1];
  }
}
