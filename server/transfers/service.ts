/**
 * Transfers (企业付款, DESIGN §2.4): payouts to a person's Alipay or WeChat account, paid exactly
 * once. The rules that make it so:
 * - the channel's number (transfer_no) is written with the row and sent unchanged, with the same
 *   body, on every retry;
 * - only the holder of the row's lease (next_query_at_ms) talks to the channel about it;
 * - a submission is counted before it is sent, and a row that was ever submitted is queried
 *   before it is sent again: an unknown answer is resolved by the channel's own view, and only a
 *   "no such transfer" there leads to a resubmission, under the same number;
 * - state changes are conditional updates on status, each with its event (and, for a failed
 *   transfer paid from a balance, the credit back) in the same transaction.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import type { AuthContext, Deps } from '../deps.ts';
import { newId, nowSeconds } from '../crypto.ts';
import { invalid, notFound } from '../errors.ts';
import { paginate } from '../http/pagination.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { insertEvent, type EventType } from '../events/repo.ts';
import { channelFor, payoutChannelFor } from '../channels/registry.ts';
import type { Provider } from '../channels/types.ts';
import { RECIPIENT_TYPES, type PayoutRequest, type PayoutResult, type TransferNotification } from '../channels/payouts.ts';
import { amountSchema, currencySchema, customerIdSchema, metadataSchema } from '../payments/validation.ts';
import { balanceInsufficient, customerOf } from '../customers/service.ts';
import { creditBalance, debitBalance } from '../customers/repo.ts';
import { isUniqueViolation } from '../payments/repo.ts';
import { sqlOf } from '../sql.ts';
import { beijingDay, releaseDaily, reserveDaily, transferSettingsOf } from './limits.ts';
import { isProductionCredential, productionHint } from './live.ts';
import { askChannel } from './ask.ts';
import {
  FINAL_TRANSFER_STATUSES, TRANSFER_CHANNELS, findTransfer, findTransferById, findTransferByNo, toTransferObject, transferFromRow,
  type TransferRow, type TransferStatus,
} from './repo.ts';

/** How long a process that submits a transfer holds it; if it dies, the worker takes over after this (CHECKSTAND_MONEY_OUT_LEASE_SECONDS). */
export const leaseMsOf = (deps: Deps) => deps.config.moneyOutLeaseSeconds * 1000;
/** The next look at a transfer without a final answer: 10 s, 30 s, 1 min, 5 min, 15 min, then hourly. */
export const TRANSFER_QUERY_SCHEDULE_MS = [10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000];
export const transferRetryDelay = (n: number) => TRANSFER_QUERY_SCHEDULE_MS[Math.min(n, TRANSFER_QUERY_SCHEDULE_MS.length - 1)]!;

export const recipientSchema = z
  .object({
    type: z.enum(RECIPIENT_TYPES, { error: `must be one of ${RECIPIENT_TYPES.join(', ')}` }),
    account: z.string({ error: 'is required' }).trim().min(1, 'must not be empty').max(128, 'must be at most 128 characters'),
    name: z.string().trim().min(1, 'must not be empty').max(128, 'must be at most 128 characters').optional(),
  })
  .strict();

export const createTransferSchema = z
  .object({
    channel: z.enum(TRANSFER_CHANNELS, { error: 'must be alipay or wechatpay' }),
    amount: amountSchema,
    currency: currencySchema.default('CNY'),
    out_transfer_no: z.string({ error: 'is required' }).regex(/^[A-Za-z0-9_\-|*.:]{1,64}$/, 'must be 1–64 characters of letters, digits and _-|*.: (no spaces)'),
    recipient: recipientSchema,
    description: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters').default('企业付款'),
    customer: customerIdSchema.optional(),
    source: z.enum(['channel', 'balance'], { error: 'must be channel or balance' }).default('channel')
      .describe("balance: take the amount from the customer's stored value (needs customer)"),
    metadata: metadataSchema.default({}),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.source === 'balance' && !t.customer) ctx.addIssue({ code: 'custom', path: ['customer'], message: 'is required with source balance' });
  });

export type CreateTransferInput = z.infer<typeof createTransferSchema>;

const notifyUrlOf = (deps: Deps, provider: Provider, appId: string) => `${deps.config.publicUrl.replace(/\/$/, '')}/notify/${provider}/${appId}`;

/** Who asks: the API (a secret key) or a console user. */
export interface TransferActor {
  consoleUserId?: string;
}

export async function createTransfer(deps: Deps, auth: AuthContext, input: CreateTransferInput, actor: TransferActor = {}) {
  const adapter = payoutChannelFor(input.channel);
  if (!adapter) throw invalid('channel_unsupported', `Transfers through ${input.channel} are not available in this build.`, 'channel');
  if (input.currency !== 'CNY') throw invalid('currency_unsupported', `${input.channel} transfers pay CNY only.`, 'currency');
  if (!adapter.recipientTypes.includes(input.recipient.type)) {
    throw invalid('recipient_type_unsupported', `${input.channel} transfers pay recipients of type ${adapter.recipientTypes.join(', ')}, not ${input.recipient.type}.`, 'recipient.type');
  }
  const bad = adapter.validate({ amount: input.amount, currency: input.currency, recipient: input.recipient, description: input.description });
  if (bad) throw invalid('parameter_invalid', bad.message, bad.param);

  const cred = await getCredentials(deps, auth.appId, input.channel, auth.livemode);
  if (auth.livemode && !isProductionCredential(input.channel, cred)) {
    throw invalid('test_credentials', `This app's live ${input.channel} config does not point at the channel's production API (${productionHint(input.channel, cred)}): a live transfer would not pay anyone. Store the live credentials first.`, 'channel');
  }
  const settings = await transferSettingsOf(deps.db, auth.appId, auth.livemode);
  if (settings.single_limit !== null && input.amount > settings.single_limit) {
    throw invalid('amount_over_limit', `Amount ${input.amount} is over this app's single-transfer limit of ${settings.single_limit}.`, 'amount');
  }
  const customer = input.customer ? await customerOf(deps, auth, input.customer, 'customer') : undefined;
  if (customer && customer.currency !== input.currency) throw invalid('currency_mismatch', `The customer's balance is in ${customer.currency}.`, 'customer');

  const id = newId('tr');
  const created = nowSeconds();
  const needsApproval = settings.approval_threshold !== null && input.amount > settings.approval_threshold;
  const lease = Date.now() + leaseMsOf(deps);
  const row = {
    id,
    app_id: auth.appId,
    livemode: auth.livemode,
    channel: input.channel,
    amount: input.amount,
    currency: input.currency,
    out_transfer_no: input.out_transfer_no,
    // Alipay out_biz_no ≤ 64, WeChat out_bill_no ≤ 32 letters and digits: the id's time and random parts.
    transfer_no: `T${id.slice(3)}`,
    recipient_type: input.recipient.type,
    recipient_account: input.recipient.account,
    recipient_name: input.recipient.name ?? null,
    description: input.description,
    status: needsApproval ? 'requires_approval' : 'pending',
    next_action: null,
    failure_code: null,
    failure_message: null,
    channel_transfer_no: null,
    customer_id: customer?.id ?? null,
    source: input.source,
    day: beijingDay(created),
    metadata: JSON.stringify(input.metadata),
    created_by: actor.consoleUserId ?? null,
    approved_by: null,
    approved_at: null,
    paid_at: null,
    created,
    updated_ms: Date.now(),
    // Held by this request while it submits; waiting for approval, nobody holds it.
    next_query_at_ms: needsApproval ? null : lease,
    submit_count: 0,
    query_count: 0,
  };
  try {
    await deps.db.transaction(async (trx) => {
      await trx('transfers').insert(row);
      if (!(await reserveDaily(trx, { appId: auth.appId, livemode: auth.livemode, day: row.day }, input.amount, settings.daily_limit))) {
        throw invalid('daily_limit_exceeded', `This transfer would pass this app's daily transfer limit of ${settings.daily_limit} (Beijing day ${row.day}).`, 'amount');
      }
      if (input.source === 'balance') {
        const debited = await debitBalance(sqlOf(trx), { customerId: customer!.id, type: 'transfer', amount: input.amount, source: id, description: `transfer ${input.out_transfer_no}` });
        if (!debited) throw balanceInsufficient('amount');
      }
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw invalid('out_transfer_no_taken', `A transfer with out_transfer_no '${input.out_transfer_no}' already exists.`, 'out_transfer_no');
    throw err;
  }
  if (!needsApproval) await driveTransfer(deps, transferFromRow(row), lease);
  deps.logger.info('transfer created', { transfer_id: id, channel: input.channel, status: row.status });
  return toTransferObject((await findTransferById(deps.db, id))!);
}

export async function transferOf(deps: Deps, auth: AuthContext, id: string): Promise<TransferRow> {
  const t = await findTransfer(deps.db, auth, id);
  if (!t) throw notFound('transfer', id);
  return t;
}

export async function retrieveTransfer(deps: Deps, auth: AuthContext, id: string) {
  return toTransferObject(await transferOf(deps, auth, id));
}

export function listTransfers(deps: Deps, auth: AuthContext, f: { limit: number; starting_after?: string; ending_before?: string; status?: string; channel?: string; out_transfer_no?: string; customer?: string }) {
  const scoped = () => {
    const q = deps.db('transfers').where({ app_id: auth.appId, livemode: auth.livemode });
    if (f.status) q.where('status', f.status);
    if (f.channel) q.where('channel', f.channel);
    if (f.out_transfer_no) q.where('out_transfer_no', f.out_transfer_no);
    if (f.customer) q.where('customer_id', f.customer);
    return q;
  };
  return paginate(scoped, { ...f, url: '/v1/transfers' }, (r) => toTransferObject(transferFromRow(r)));
}

function requestOf(deps: Deps, t: TransferRow): PayoutRequest {
  return {
    transferNo: t.transfer_no,
    amount: t.amount,
    currency: t.currency,
    recipient: { type: t.recipient_type, account: t.recipient_account, ...(t.recipient_name ? { name: t.recipient_name } : {}) },
    description: t.description,
    notifyUrl: notifyUrlOf(deps, t.channel, t.app_id),
    createdAt: t.created,
  };
}

/**
 * One turn at the channel for a transfer whose lease (`lease`) this process holds: submit it, or,
 * if it may have reached the channel before, query it and resubmit (same number, same body) only
 * when the channel has no such transfer. Without a final answer it is due again after the backoff.
 */
export async function driveTransfer(deps: Deps, t: TransferRow, lease: number): Promise<void> {
  const adapter = payoutChannelFor(t.channel)!;
  const req = requestOf(deps, t);
  const asked = await askChannel<PayoutResult>(deps, {
    table: 'transfers', id: t.id, submitCount: t.submit_count,
    queryFirst: t.submit_count > 0 || t.status === 'awaiting_recipient', mayResend: true,
    query: async () => adapter.query(await getCredentials(deps, t.app_id, t.channel, t.livemode), req),
    send: async () => adapter.submit(await getCredentials(deps, t.app_id, t.channel, t.livemode), req),
  });
  if ('unknown' in asked) {
    deps.logger.warn('transfer: no answer from the channel, will query', { transfer_id: t.id, err: asked.unknown instanceof Error ? asked.unknown.message : String(asked.unknown) });
    await reschedule(deps, t, lease);
    return;
  }
  const result = asked.result;
  const moved = await applyTransferResult(deps, t, result);
  if (!moved || result.status === 'pending' || result.status === 'awaiting_recipient') await reschedule(deps, t, lease);
}

async function reschedule(deps: Deps, t: TransferRow, lease: number): Promise<void> {
  await deps.db('transfers')
    .where({ id: t.id, next_query_at_ms: lease })
    .whereIn('status', ['pending', 'awaiting_recipient'])
    .update({ next_query_at_ms: Date.now() + transferRetryDelay(t.submit_count + t.query_count) });
}

const EVENT_OF: Partial<Record<TransferStatus, EventType>> = {
  succeeded: 'transfer.succeeded',
  failed: 'transfer.failed',
  canceled: 'transfer.canceled',
  awaiting_recipient: 'transfer.awaiting_recipient',
};

/**
 * Applies the channel's word on a transfer: conditionally on its current status, with its event,
 * the credit back of a balance-funded one that did not pay, and the release of its day's total.
 * Returns whether the transfer moved.
 */
export async function applyTransferResult(deps: Deps, t: TransferRow, r: PayoutResult): Promise<boolean> {
  if (r.status === 'not_found' || r.status === 'pending') return false;
  const to: TransferStatus = r.status;
  const from: TransferStatus[] = to === 'awaiting_recipient' ? ['pending'] : ['pending', 'awaiting_recipient'];
  const final = FINAL_TRANSFER_STATUSES.includes(to);
  const changes: Record<string, unknown> = { status: to, updated_ms: Date.now() };
  if (r.channelTransferNo) changes.channel_transfer_no = r.channelTransferNo;
  if (to === 'awaiting_recipient') changes.next_action = JSON.stringify(r.nextAction ?? null);
  if (to === 'succeeded') changes.paid_at = r.paidAt ?? nowSeconds();
  if (to === 'failed' || to === 'canceled') {
    changes.failure_code = (r.failureCode ?? (to === 'canceled' ? 'canceled' : 'failed')).slice(0, 64);
    changes.failure_message = (r.failureMessage ?? null)?.slice(0, 500) ?? null;
  }
  if (final) changes.next_query_at_ms = null;
  const moved = await deps.db.transaction(async (trx: Knex.Transaction) => {
    const n = await trx('transfers').where({ id: t.id }).whereIn('status', from).update(changes);
    if (n !== 1) return false;
    await afterMove(trx, t, to);
    return true;
  });
  if (moved) {
    deps.logger.info('transfer moved', { transfer_id: t.id, status: to });
    await deps.bus.publish('webhooks', t.id);
  }
  return moved;
}

/** What a move brings with it, in its transaction: the event, and for money that did not go out, the balance and the day's total back. */
async function afterMove(trx: Knex.Transaction, t: TransferRow, to: TransferStatus): Promise<void> {
  if (to === 'failed' || to === 'canceled') {
    await releaseDaily(trx, { appId: t.app_id, livemode: t.livemode, day: t.day }, t.amount);
    if (t.source === 'balance' && t.customer_id) {
      await creditBalance(sqlOf(trx), { customerId: t.customer_id, type: 'transfer', amount: t.amount, source: t.id, description: `transfer ${t.out_transfer_no} ${to}` });
    }
  }
  const type = EVENT_OF[to];
  if (type) {
    const now = transferFromRow(await trx('transfers').where({ id: t.id }).first());
    await insertEvent(trx, { appId: t.app_id, livemode: t.livemode, type, object: toTransferObject(now) });
  }
}

/**
 * Cancels a transfer: one waiting for approval at once; one the recipient has not confirmed yet
 * at the channel (WeChat), whose answer decides.
 */
export async function cancelTransfer(deps: Deps, auth: AuthContext, id: string) {
  const t = await transferOf(deps, auth, id);
  if (t.status === 'requires_approval') {
    await rejectTransfer(deps, t, { code: 'canceled', message: 'canceled by the merchant before approval' });
    return retrieveTransfer(deps, auth, id);
  }
  const adapter = payoutChannelFor(t.channel)!;
  if (t.status !== 'awaiting_recipient' || !adapter.cancel) {
    throw invalid('transfer_not_cancelable', `A ${t.status} ${t.channel} transfer cannot be canceled${t.status === 'pending' ? ' (it is at the channel already)' : ''}.`, 'id');
  }
  const cred = await getCredentials(deps, t.app_id, t.channel, t.livemode);
  let r = await adapter.cancel(cred, requestOf(deps, t));
  // CANCELING: the channel took the cancel; its state settles soon after (a notify follows too).
  if (r.status === 'pending') r = await adapter.query(cred, requestOf(deps, t));
  await applyTransferResult(deps, t, r.status === 'canceled' ? { ...r, failureCode: r.failureCode ?? 'canceled', failureMessage: r.failureMessage ?? 'canceled by the merchant' } : r);
  return retrieveTransfer(deps, auth, id);
}

/** requires_approval → canceled (the approver said no, or the merchant withdrew it). */
export async function rejectTransfer(deps: Deps, t: TransferRow, why: { code: string; message: string }): Promise<boolean> {
  const moved = await deps.db.transaction(async (trx: Knex.Transaction) => {
    const n = await trx('transfers').where({ id: t.id, status: 'requires_approval' })
      .update({ status: 'canceled', failure_code: why.code, failure_message: why.message, updated_ms: Date.now() });
    if (n !== 1) return false;
    await afterMove(trx, t, 'canceled');
    return true;
  });
  if (moved) await deps.bus.publish('webhooks', t.id);
  return moved;
}

/**
 * A console user approves a transfer above the threshold: never its creator. The approval takes
 * the lease, and the transfer goes to the channel at once.
 */
export async function approveTransfer(deps: Deps, t: TransferRow, userId: string): Promise<TransferRow> {
  if (t.status !== 'requires_approval') throw invalid('transfer_not_awaiting_approval', `This transfer is ${t.status}, not waiting for approval.`, 'id');
  if (t.created_by === userId) throw invalid('approval_by_creator', 'A transfer must be approved by another console user than the one who created it.', 'id', 403);
  const lease = Date.now() + leaseMsOf(deps);
  const n = await deps.db('transfers').where({ id: t.id, status: 'requires_approval' })
    .update({ status: 'pending', approved_by: userId, approved_at: nowSeconds(), next_query_at_ms: lease, updated_ms: Date.now() });
  if (n !== 1) throw invalid('transfer_not_awaiting_approval', 'This transfer was approved or canceled meanwhile.', 'id');
  deps.logger.info('transfer approved', { transfer_id: t.id, approved_by: userId });
  const now = (await findTransferById(deps.db, t.id))!;
  await driveTransfer(deps, now, lease);
  return (await findTransferById(deps.db, t.id))!;
}

export type MoneyOutNoticeOutcome = { ok: true; changed: boolean } | { ok: false; reason: string };

/**
 * A verified transfer result pushed by the channel. Trusted only for a transfer of this app and
 * mode, with the channel app / merchant of its config and the transfer's amount.
 */
export async function applyTransferNotice(
  deps: Deps,
  ctx: { provider: Provider; appId: string; livemode: boolean; cred: unknown },
  n: TransferNotification,
): Promise<MoneyOutNoticeOutcome> {
  if (ctx.provider !== 'alipay' && ctx.provider !== 'wechatpay') return { ok: false, reason: 'transfers of this channel are not handled' };
  const channel = channelFor(ctx.provider)!;
  if (n.appId && n.appId !== channel.appIdOf(ctx.cred)) return { ok: false, reason: 'app id does not match' };
  const merchantId = channel.merchantIdOf(ctx.cred);
  if (merchantId && n.merchantId && n.merchantId !== merchantId) return { ok: false, reason: 'merchant id does not match' };
  const t = await findTransferByNo(deps.db, ctx.provider, n.transferNo);
  if (!t || t.app_id !== ctx.appId || t.livemode !== ctx.livemode) return { ok: false, reason: 'no such transfer for this app' };
  if (n.amount !== t.amount) return { ok: false, reason: 'amount does not match the transfer' };
  if (t.channel_transfer_no && n.channelTransferNo && n.channelTransferNo !== t.channel_transfer_no) return { ok: false, reason: 'channel transfer number does not match' };
  if (t.status === 'requires_approval') return { ok: false, reason: 'the transfer was never submitted' };
  const changed = await applyTransferResult(deps, t, n);
  deps.logger.info('transfer notify accepted', { transfer_id: t.id, status: n.status, duplicate: !changed });
  return { ok: true, changed };
}
