/**
 * The daily statement job, run by the payment worker's loop (payments/worker.ts): once the
 * channels publish the day before's statement (Alipay and WeChat Pay both say from 10:00 Beijing
 * time the next day), each configured (app, mode, channel) gets a pending statement row for that
 * day, and due rows are claimed (a conditional update, so several processes never fetch one
 * twice at once) and fetched. A failed fetch is tried again an hour later, up to five times;
 * "no statement" from the channel is final (a day without business).
 */
import type { Deps } from '../deps.ts';
import { statementChannelFor, statementProviders } from '../channels/registry.ts';
import { beijingDate } from '../dashboard/format.ts';
import { claimStatement, configuredChannels, dueStatements, ensureStatement } from './repo.ts';
import { fetchDay } from './service.ts';

/** Beijing hour from which the day before's statement is asked for. */
export const STATEMENT_READY_HOUR = 10;
/** How often the loop looks at statements: they change once a day. */
export const STATEMENT_EVERY_MS = 10 * 60_000;
const RETRY_MS = 3_600_000;
const MAX_ATTEMPTS = 5;
const BATCH = 20;

/** One look: queue yesterday's statements when they are due, then fetch what is due. Returns how many fetches ran. */
export async function statementPass(deps: Deps, nowMs = Date.now(), guarded?: (what: string, id: string, fn: () => Promise<unknown>) => Promise<void>): Promise<number> {
  const beijingHour = new Date(nowMs + 8 * 3_600_000).getUTCHours();
  if (beijingHour >= STATEMENT_READY_HOUR) {
    const date = beijingDate(nowMs - 86_400_000);
    for (const c of await configuredChannels(deps.db, statementProviders())) {
      const adapter = statementChannelFor(c.provider);
      for (const kind of adapter?.kinds ?? []) await ensureStatement(deps.db, { ...c, date }, kind, nowMs);
    }
  }
  let ran = 0;
  for (const due of await dueStatements(deps.db, nowMs, BATCH)) {
    if (due.attempts >= MAX_ATTEMPTS) continue;
    if (!(await claimStatement(deps.db, due.id, due.nextFetchAtMs, nowMs + RETRY_MS))) continue;
    ran++;
    const run = () => fetchDay(deps, due, { kinds: [due.kind], retryAtMs: due.attempts + 1 >= MAX_ATTEMPTS ? null : nowMs + RETRY_MS });
    if (guarded) await guarded('statement fetch', due.id, run);
    else await run();
  }
  return ran;
}
