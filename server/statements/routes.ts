/**
 * Console pages of statement reconciliation, mounted at /console/reconciliation/statements: a
 * day's report per channel (each discrepancy linked to its payment, resolve with a note, re-check,
 * fetch again), the stored file, and the fetch and upload forms of any day.
 */
import { Router, type Request, type Response } from 'express';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { isProvider, statementChannelFor, statementProviders } from '../channels/registry.ts';
import type { Provider } from '../channels/types.ts';
import type { StatementKind } from '../channels/statements.ts';
import { BASE, one, renderPage, scopeOf, sessionOf } from '../dashboard/page.ts';
import { tOf } from '../dashboard/i18n.ts';
import { dayDiscrepancies, findDiscrepancy, findStatement, resolveDiscrepancy, statementFile, type DayKey } from './repo.ts';
import { checkDay, dayRange, fetchDay, uploadDay } from './service.ts';
import type { UploadedFile } from './multipart.ts';

function dayKeyOf(res: Response, providerText: unknown, dateText: unknown): DayKey {
  const provider = one(providerText) ?? '';
  const date = one(dateText)?.trim() ?? '';
  if (!isProvider(provider) || !statementChannelFor(provider)) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', `Choose a channel whose statements Checkstand reads (${statementProviders().join(', ')}).`, 'channel');
  dayRange(date);
  return { ...scopeOf(res), provider, date };
}

const reportPath = (k: { provider: string; date: string }) => `${BASE}/reconciliation/statements/${k.provider}/${k.date}`;

export function createStatementPages(deps: Deps): Router {
  const r = Router();

  async function show(res: Response, k: DayKey, notice?: string) {
    const adapter = statementChannelFor(k.provider as Provider)!;
    const statements = await Promise.all(adapter.kinds.map((kind) => findStatement(deps.db, k, kind)));
    const discrepancies = await dayDiscrepancies(deps.db, k);
    renderPage(res, 'statement-day', {
      title: tOf(res)('Statement {channel} {date}', { channel: k.provider, date: k.date }), day: k, kinds: adapter.kinds, statements, discrepancies, query: notice,
    });
  }

  r.get('/:provider/:date', async (req, res) => show(res, dayKeyOf(res, req.params.provider, req.params.date), one(req.query.done)));

  // The console's "fetch now" for any day: the daily job's fetch, at once.
  r.post('/fetch', async (req, res) => {
    const k = dayKeyOf(res, req.body?.channel, req.body?.date);
    const result = await fetchDay(deps, k);
    res.redirect(303, `${reportPath(k)}?done=${result.statement.status}`);
  });

  // Re-check: match the stored statement against the payments as they are now (no fetch).
  r.post('/:provider/:date/recheck', async (req, res) => {
    const k = dayKeyOf(res, req.params.provider, req.params.date);
    await checkDay(deps, k);
    res.redirect(303, `${reportPath(k)}?done=checked`);
  });

  r.post('/:provider/:date/fetch', async (req, res) => {
    const k = dayKeyOf(res, req.params.provider, req.params.date);
    const result = await fetchDay(deps, k);
    res.redirect(303, `${reportPath(k)}?done=${result.statement.status}`);
  });

  // A statement file downloaded from the channel's merchant portal (multipart, parsed before the CSRF check).
  r.post('/upload', async (req: Request, res) => {
    const k = dayKeyOf(res, req.body?.channel, req.body?.date);
    const file = (req as { file?: UploadedFile }).file;
    if (!file) throw new ApiError(400, 'invalid_request_error', 'parameter_missing', 'Choose the statement file to upload (the form must be sent as multipart/form-data).', 'file');
    const kind = (one(req.body?.kind) ?? 'trade') as StatementKind;
    if (kind !== 'trade' && kind !== 'fundflow') throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'The kind is trade or fundflow.', 'kind');
    await uploadDay(deps, k, kind, { body: file.body, fileName: file.fileName });
    res.redirect(303, `${reportPath(k)}?done=uploaded`);
  });

  r.post('/discrepancies/:id/resolve', async (req, res) => {
    const scope = scopeOf(res);
    const d = await findDiscrepancy(deps.db, scope, String(req.params.id));
    if (!d) throw new ApiError(404, 'invalid_request_error', 'resource_missing', 'There is no such discrepancy in this app and mode.');
    const note = (one(req.body?.note) ?? '').trim();
    if (!note) throw new ApiError(400, 'invalid_request_error', 'parameter_missing', 'Say how it was resolved: the note is kept with it.', 'note');
    await resolveDiscrepancy(deps.db, scope, d.id, note.slice(0, 1000), sessionOf(res).email);
    res.redirect(303, `${reportPath(d)}?done=resolved`);
  });

  r.get('/files/:id', async (req, res) => {
    const f = await statementFile(deps.db, scopeOf(res), String(req.params.id));
    if (!f) throw new ApiError(404, 'invalid_request_error', 'resource_missing', 'There is no such statement file in this app and mode.');
    res.type('application/octet-stream');
    res.set('Content-Disposition', `attachment; filename="${f.fileName.replace(/[^\w.\-]/g, '_')}"`);
    res.send(f.file);
  });

  return r;
}
