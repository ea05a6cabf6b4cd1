import { Router, type Request, type Response } from 'express';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { toApiError } from '../http/errors.ts';
import { paginate } from '../http/pagination.ts';
import { randomId } from '../crypto.ts';
import { RECIPIENT_TYPES } from '../channels/payouts.ts';
import { TRANSFER_CHANNELS, TRANSFER_STATUSES, findTransfer, transferFromRow, type TransferRow } from '../transfers/repo.ts';
import { approveTransfer, cancelTransfer, createTransfer, createTransferSchema, rejectTransfer } from '../transfers/service.ts';
import { beijingDay, dayTotal, setTransferSettings, transferSettingsOf } from '../transfers/limits.ts';
import { RED_PACKET_STATUSES, redPacketFromRow } from '../red-packets/repo.ts';
import { findConsoleUser } from './users.ts';
import { parseDecimal } from './format.ts';
import { BASE, one, renderPage, scopeOf, sessionOf } from './page.ts';
import { tOf, type Translate } from './i18n.ts';
import { cursorOf, pager } from './payments-routes.ts';

/** A limit that does not read, in the form's words (one whole sentence per field, for the catalog). */
function settingsErrorOf(t: Translate, field: 'single_limit' | 'daily_limit' | 'approval_threshold'): string {
  if (field === 'single_limit') return t('single limit: enter an amount in yuan, or leave it empty for no limit.');
  if (field === 'daily_limit') return t('daily limit: enter an amount in yuan, or leave it empty for no limit.');
  return t('approval threshold: enter an amount in yuan, or leave it empty for no limit.');
}

const PAGE_SIZE = 25;
const transferIdPattern = /^tr_[A-Za-z0-9]{1,60}$/;
const consoleKeyPattern = /^console-[A-Za-z0-9]{24}$/;
const pick = (value: string | undefined, allowed: readonly string[]) => (value && allowed.includes(value) ? value : undefined);

/**
 * /console/transfers: the list, a form to pay someone (numbered by the form, so a form sent twice
 * is one transfer), the app's limits for the current mode, and each transfer's page, where a
 * second console user approves or rejects one above the approval threshold.
 */
export function createTransferPages(deps: Deps): Router {
  const r = Router();

  async function showList(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const scope = scopeOf(res);
    const filters = { status: pick(one(req.query.status), TRANSFER_STATUSES), channel: pick(one(req.query.channel), TRANSFER_CHANNELS) };
    const cursor = cursorOf(req);
    const page = await paginate(() => {
      const q = deps.db('transfers').where({ app_id: scope.appId, livemode: scope.livemode });
      if (filters.status) q.where('status', filters.status);
      if (filters.channel) q.where('channel', filters.channel);
      return q;
    }, { limit: PAGE_SIZE, ...cursor, url: '' }, transferFromRow);
    const settings = await transferSettingsOf(deps.db, scope.appId, scope.livemode);
    const today = beijingDay(Math.floor(Date.now() / 1000));
    renderPage(res, 'transfers', {
      title: 'Transfers',
      section: 'transfers',
      transfers: page.data,
      filters,
      statuses: TRANSFER_STATUSES,
      channels: TRANSFER_CHANNELS,
      recipientTypes: RECIPIENT_TYPES,
      pager: pager(page.data, page.has_more, cursor),
      limits: settings,
      sentToday: await dayTotal(deps.db, scope.appId, scope.livemode, today),
      form: { channel: 'alipay', amount: '', recipient_type: 'alipay_login_id', account: '', name: '', description: '' },
      transferKey: `console-${randomId(24)}`,
      saved: one(req.query.saved) === '1',
      ...extra,
    }, status);
  }

  r.get('/', (req, res) => showList(req, res));

  r.post('/', async (req, res) => {
    const scope = scopeOf(res);
    const body = req.body ?? {};
    const form = {
      channel: one(body.channel) ?? '', amount: (one(body.amount) ?? '').trim(), recipient_type: one(body.recipient_type) ?? '',
      account: (one(body.account) ?? '').trim(), name: (one(body.name) ?? '').trim(), description: (one(body.description) ?? '').trim(),
    };
    const key = one(body.transfer_key);
    const transferKey = key && consoleKeyPattern.test(key) ? key : `console-${randomId(24)}`;
    const done = (id: string) => res.redirect(303, `${BASE}/transfers/${id}`);
    const earlier = await deps.db('transfers').where({ app_id: scope.appId, livemode: scope.livemode, out_transfer_no: transferKey }).first('id');
    if (earlier) return done(earlier.id);
    try {
      const amount = parseDecimal(form.amount, 'CNY');
      if (amount === undefined || amount <= 0) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', tOf(res)('Enter the amount in yuan, such as 12.34.'), 'amount');
      const parsed = createTransferSchema.safeParse({
        channel: form.channel, amount, out_transfer_no: transferKey,
        recipient: { type: form.recipient_type, account: form.account, ...(form.name ? { name: form.name } : {}) },
        ...(form.description ? { description: form.description } : {}),
      });
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', `${issue.path.join('.')} ${issue.message}`, issue.path.join('.'));
      }
      const t = await createTransfer(deps, scope, parsed.data, { consoleUserId: sessionOf(res).userId });
      deps.logger.info('console transfer', { transfer_id: t.id, user: sessionOf(res).userId });
      done(t.id);
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status >= 500) throw err;
      const first = apiErr.code === 'out_transfer_no_taken' ? await deps.db('transfers').where({ app_id: scope.appId, livemode: scope.livemode, out_transfer_no: transferKey }).first('id') : undefined;
      if (first) return done(first.id);
      await showList(req, res, { formError: apiErr.message, form, transferKey }, 400);
    }
  });

  r.post('/settings', async (req, res) => {
    const scope = scopeOf(res);
    const values: Record<string, number | null> = {};
    for (const field of ['single_limit', 'daily_limit', 'approval_threshold'] as const) {
      const text = (one(req.body?.[field]) ?? '').trim();
      if (text === '') {
        values[field] = null;
        continue;
      }
      const v = parseDecimal(text, 'CNY');
      if (v === undefined || v < 0) return showList(req, res, { settingsError: settingsErrorOf(tOf(res), field) }, 400);
      values[field] = v;
    }
    await setTransferSettings(deps.db, scope.appId, scope.livemode, values as { single_limit: number | null; daily_limit: number | null; approval_threshold: number | null });
    deps.logger.info('console transfer limits set', { app_id: scope.appId, livemode: scope.livemode, user: sessionOf(res).userId, ...values });
    res.redirect(303, `${BASE}/transfers?saved=1`);
  });

  async function transferOr404(req: Request, res: Response): Promise<TransferRow> {
    const id = String(req.params.id);
    const t = transferIdPattern.test(id) ? await findTransfer(deps.db, scopeOf(res), id) : undefined;
    if (!t) throw new ApiError(404, 'invalid_request_error', 'resource_missing', `No such transfer: '${id}'`);
    return t;
  }

  async function showTransfer(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const t = await transferOr404(req, res);
    const [creator, approver, events] = await Promise.all([
      t.created_by ? findConsoleUser(deps.db, t.created_by) : undefined,
      t.approved_by ? findConsoleUser(deps.db, t.approved_by) : undefined,
      deps.db('events').where({ object_id: t.id }).orderBy([{ column: 'created', order: 'asc' }, { column: 'id', order: 'asc' }]).limit(50).select('id', 'type', 'created'),
    ]);
    renderPage(res, 'transfer', {
      title: tOf(res)('Transfer {no}', { no: t.out_transfer_no }),
      section: 'transfers',
      transfer: t,
      creator,
      approver,
      events,
      mayApprove: t.status === 'requires_approval' && t.created_by !== sessionOf(res).userId,
      ...extra,
    }, status);
  }

  r.get('/:id', (req, res) => showTransfer(req, res));

  const action = (name: string, run: (t: TransferRow, res: Response) => Promise<unknown>) => async (req: Request, res: Response) => {
    const t = await transferOr404(req, res);
    try {
      await run(t, res);
      deps.logger.info(`console transfer ${name}`, { transfer_id: t.id, user: sessionOf(res).userId });
      res.redirect(303, `${BASE}/transfers/${t.id}`);
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status >= 500) throw err;
      await showTransfer(req, res, { actionError: apiErr.message }, apiErr.status === 403 ? 403 : 400);
    }
  };

  r.post('/:id/approve', action('approve', (t, res) => approveTransfer(deps, t, sessionOf(res).userId)));
  r.post('/:id/reject', action('reject', async (t, res) => {
    if (t.status !== 'requires_approval') throw new ApiError(400, 'invalid_request_error', 'transfer_not_awaiting_approval', `This transfer is ${t.status}, not waiting for approval.`);
    const who = await findConsoleUser(deps.db, sessionOf(res).userId);
    await rejectTransfer(deps, t, { code: 'approval_rejected', message: `rejected in the console by ${who?.email ?? 'a console user'}` });
  }));
  r.post('/:id/cancel', action('cancel', (t) => cancelTransfer(deps, { appId: t.app_id, livemode: t.livemode }, t.id)));

  return r;
}

/** /console/red_packets: every red packet of the app in the current mode (read-only; they are sent through the API). */
export function createRedPacketPages(deps: Deps): Router {
  const r = Router();
  r.get('/', async (req, res) => {
    const scope = scopeOf(res);
    const filters = { status: pick(one(req.query.status), RED_PACKET_STATUSES) };
    const cursor = cursorOf(req);
    const page = await paginate(() => {
      const q = deps.db('red_packets').where({ app_id: scope.appId, livemode: scope.livemode });
      if (filters.status) q.where('status', filters.status);
      return q;
    }, { limit: PAGE_SIZE, ...cursor, url: '' }, redPacketFromRow);
    renderPage(res, 'red-packets', { title: 'Red packets', section: 'red_packets', packets: page.data, filters, statuses: RED_PACKET_STATUSES, pager: pager(page.data, page.has_more, cursor) });
  });
  return r;
}

