import type { Knex } from 'knex';
import { z } from 'zod';
import type { AuthContext, Deps } from '../deps.ts';
import { newId, nowSeconds } from '../crypto.ts';
import { invalid, notFound } from '../errors.ts';
import { paginate } from '../http/pagination.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { insertEvent } from '../events/repo.ts';
import type { ChannelNotification, Provider } from '../channels/types.ts';
import type { AlipayCredentials } from '../channels/alipay/index.ts';
import { agreementSignUrl, unsignAgreement, walletSchemeUrl } from '../channels/alipay/agreements.ts';
import type { WechatpayCredentials } from '../channels/wechatpay/index.ts';
import { deleteContract, entrustWebUrl } from '../channels/wechatpay/papay.ts';
import { MAX_AMOUNT, customerIdSchema, metadataSchema } from '../payments/validation.ts';
import { customerOf } from '../customers/service.ts';
import { endSubscriptionsOfAgreement } from '../subscriptions/service.ts';
import {
  agreementFromRow, findAgreement, findAgreementByChannelNo, toAgreementObject, transitionAgreement,
  type AgreementAction, type AgreementRow,
} from './repo.ts';

const dateSchema = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date yyyy-MM-dd').refine((s) => {
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}, 'must be a calendar date yyyy-MM-dd');

/**
 * The mandate's period rule, Alipay's period_rule_params (recurring.md §1.1): DAY periods of at
 * least 7 days, MONTH periods on a day 1–28 (a calendar month, the same day-of-month), and no
 * period longer than a year.
 */
export const periodRuleSchema = z
  .object({
    period_type: z.enum(['DAY', 'MONTH'], { error: 'must be DAY or MONTH' }),
    period: z.number({ error: 'must be a whole number of period_type units' }).int('must be a whole number of period_type units').min(1, 'must be at least 1'),
    execute_time: dateSchema.describe('the first deduction date (Beijing), yyyy-MM-dd'),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.period_type === 'DAY' && r.period < 7) ctx.addIssue({ code: 'custom', path: ['period'], message: 'must be at least 7 with period_type DAY (Alipay 周期扣款)' });
    if (r.period_type === 'DAY' && r.period > 366) ctx.addIssue({ code: 'custom', path: ['period'], message: 'must be at most 366 days (a year)' });
    if (r.period_type === 'MONTH' && r.period > 12) ctx.addIssue({ code: 'custom', path: ['period'], message: 'must be at most 12 months (a year)' });
    const day = Number(r.execute_time.slice(8, 10));
    if (r.period_type === 'MONTH' && day > 28) ctx.addIssue({ code: 'custom', path: ['execute_time'], message: 'must fall on day 1–28 of the month with period_type MONTH (Alipay deducts monthly only on those days)' });
  });

export const createAgreementSchema = z
  .object({
    customer: customerIdSchema,
    channel: z.enum(['alipay', 'wechatpay'], { error: 'must be alipay or wechatpay' }),
    sign_method: z.enum(['redirect', 'qr'], { error: 'must be redirect or qr' }).default('redirect').describe('redirect: a page to send the browser to; qr: a code for the wallet to scan'),
    period_rule: periodRuleSchema,
    single_amount_max: z
      .number({ error: (i) => (i.input === undefined ? 'is required' : 'must be a positive integer of the minor unit') })
      .int('must be a positive integer of the minor unit')
      .min(1, 'must be a positive integer of the minor unit')
      .max(MAX_AMOUNT, `must be at most ${MAX_AMOUNT}`),
    return_url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(1000).optional(),
    metadata: metadataSchema.default({}),
  })
  .strict();

const notifyUrlOf = (deps: Deps, provider: Provider, appId: string) => `${deps.config.publicUrl.replace(/\/$/, '')}/notify/${provider}/${appId}`;

export async function agreementOf(deps: Deps, auth: AuthContext, id: string): Promise<AgreementRow> {
  const a = await findAgreement(deps.db, auth, id);
  if (!a) throw notFound('agreement', id);
  return a;
}

/**
 * A new mandate, pending until the customer signs in the wallet. Nothing is sent to the channel
 * here: the signing page is a signed gateway URL the customer's browser (or scan) carries, and
 * Alipay stores the mandate once it is opened.
 */
export async function createAgreement(deps: Deps, auth: AuthContext, input: z.infer<typeof createAgreementSchema>) {
  const customer = await customerOf(deps, auth, input.customer, 'customer');
  const product = input.channel === 'wechatpay' ? 'WeChat Pay 委托代扣' : 'Alipay 周期扣款';
  if (customer.currency !== 'CNY') throw invalid('currency_unsupported', `${product} deducts CNY; this customer's currency is ${customer.currency}.`, 'customer');
  const id = newId('agr');
  // Alipay external_agreement_no / WeChat contract_code: ≤ 32 letters and digits, unique for the merchant; the id's random part is.
  const externalAgreementNo = `CS${id.slice(4)}`.slice(0, 32);
  const action = input.channel === 'wechatpay'
    ? await wechatSignAction(deps, auth, input, externalAgreementNo, customer.out_user_id ?? customer.id)
    : await alipaySignAction(deps, auth, input, externalAgreementNo, customer.out_user_id ?? undefined);
  const row = {
    id,
    app_id: auth.appId,
    livemode: auth.livemode,
    customer_id: customer.id,
    channel: input.channel,
    status: 'pending',
    external_agreement_no: externalAgreementNo,
    channel_agreement_no: null,
    period_type: input.period_rule.period_type,
    period: input.period_rule.period,
    execute_time: input.period_rule.execute_time,
    single_amount_max: input.single_amount_max,
    currency: 'CNY',
    next_action: JSON.stringify(action),
    terminated_reason: null,
    metadata: JSON.stringify(input.metadata),
    created: nowSeconds(),
    updated_ms: Date.now(),
  };
  await deps.db('agreements').insert(row);
  return toAgreementObject(agreementFromRow(row));
}

/**
 * WeChat 委托代扣 (recurring.md §2.1): the 公众号 signing page (entrustweb), which opens inside
 * WeChat: redirect from a page already in WeChat, or a QR code the customer scans with WeChat.
 * The template (plan_id) fixes WeChat's own limits; single_amount_max is Checkstand's.
 */
async function wechatSignAction(deps: Deps, auth: AuthContext, _input: z.infer<typeof createAgreementSchema>, contractCode: string, displayAccount: string): Promise<AgreementAction> {
  const cred = (await getCredentials(deps, auth.appId, 'wechatpay', auth.livemode)) as WechatpayCredentials;
  const url = entrustWebUrl(cred, {
    contractCode,
    // No emoji or nickname: the merchant's own id of the customer, letters, digits and a few marks.
    displayAccount: displayAccount.replace(/[^A-Za-z0-9_.@-]/g, '').slice(0, 32) || contractCode,
    notifyUrl: notifyUrlOf(deps, 'wechatpay', auth.appId),
  });
  return _input.sign_method === 'qr' ? { type: 'qr', qr_code_url: url } : { type: 'redirect', redirect_url: url };
}

async function alipaySignAction(deps: Deps, auth: AuthContext, input: z.infer<typeof createAgreementSchema>, externalAgreementNo: string, externalLogonId: string | undefined): Promise<AgreementAction> {
  const cred = (await getCredentials(deps, auth.appId, 'alipay', auth.livemode)) as AlipayCredentials;
  const signUrl = await agreementSignUrl(cred, {
    externalAgreementNo,
    periodType: input.period_rule.period_type,
    period: input.period_rule.period,
    executeTime: input.period_rule.execute_time,
    singleAmount: input.single_amount_max,
    accessChannel: input.sign_method === 'qr' ? 'QRCODE' : 'ALIPAYAPP',
    notifyUrl: notifyUrlOf(deps, 'alipay', auth.appId),
    returnUrl: input.return_url,
    externalLogonId,
  });
  return input.sign_method === 'qr'
    ? { type: 'qr', qr_code_url: signUrl }
    : { type: 'redirect', redirect_url: signUrl, wallet_url: walletSchemeUrl(signUrl) };
}

/** Ends a signed mandate at its channel: Alipay unsign, WeChat deletecontract (both idempotent there). */
async function endAtChannel(deps: Deps, a: Pick<AgreementRow, 'app_id' | 'livemode' | 'channel'>, channelNo: string): Promise<void> {
  if (a.channel === 'wechatpay') {
    const cred = (await getCredentials(deps, a.app_id, 'wechatpay', a.livemode)) as WechatpayCredentials;
    return deleteContract(cred, channelNo, 'merchant terminated');
  }
  const cred = (await getCredentials(deps, a.app_id, 'alipay', a.livemode)) as AlipayCredentials;
  return unsignAgreement(cred, channelNo, notifyUrlOf(deps, 'alipay', a.app_id));
}

export async function retrieveAgreement(deps: Deps, auth: AuthContext, id: string) {
  return toAgreementObject(await agreementOf(deps, auth, id));
}

export function listAgreements(deps: Deps, auth: AuthContext, f: { limit: number; starting_after?: string; ending_before?: string; customer?: string; status?: string }) {
  const scoped = () => {
    const q = deps.db('agreements').where({ app_id: auth.appId, livemode: auth.livemode });
    if (f.customer) q.where('customer_id', f.customer);
    if (f.status) q.where('status', f.status);
    return q;
  };
  return paginate(scoped, { ...f, url: '/v1/agreements' }, (r) => toAgreementObject(agreementFromRow(r)));
}

/** Moves a mandate and writes its event in one transaction; false when it was already there. */
async function moveAgreement(deps: Deps, a: AgreementRow, to: 'active' | 'terminated', changes: Record<string, unknown>): Promise<boolean> {
  const moved = await deps.db.transaction(async (trx: Knex.Transaction) => {
    if (!(await transitionAgreement(trx, a, to, changes))) return false;
    const now = agreementFromRow(await trx('agreements').where({ id: a.id }).first());
    await insertEvent(trx, { appId: a.app_id, livemode: a.livemode, type: to === 'active' ? 'agreement.active' : 'agreement.terminated', object: toAgreementObject(now) });
    // Nothing can be charged through an ended mandate: its subscriptions end with it.
    if (to === 'terminated') await endSubscriptionsOfAgreement(trx, a.id);
    return true;
  });
  if (moved) await deps.bus.publish('webhooks', a.id);
  return moved;
}

/**
 * Ends a mandate. A pending one was never signed: it ends here (its signing page stops working
 * once the notify of a late signing is refused... and answered by an unsign, see
 * applyAgreementNotice). An active one is unsigned at the channel first.
 */
export async function terminateAgreement(deps: Deps, auth: AuthContext, id: string) {
  let a = await agreementOf(deps, auth, id);
  for (let i = 0; i < 3 && a.status !== 'terminated'; i++) {
    if (a.status === 'active') await endAtChannel(deps, a, a.channel_agreement_no!);
    await moveAgreement(deps, a, 'terminated', { terminated_reason: 'merchant' });
    a = await agreementOf(deps, auth, id);
  }
  return toAgreementObject(a);
}

export type AgreementNoticeOutcome = { ok: true; changed: boolean } | { ok: false; reason: string };

/**
 * A verified mandate notify (sign or unsign). Trusted only for a mandate of this app and mode
 * whose channel app id matches; a sign notify for a mandate we already ended (a customer who
 * signed a stale page) is answered by unsigning it at the channel.
 */
export async function applyAgreementNotice(
  deps: Deps,
  ctx: { provider: Provider; appId: string; livemode: boolean; cred: unknown },
  n: Extract<ChannelNotification, { kind: 'agreement' }>,
): Promise<AgreementNoticeOutcome> {
  if (ctx.provider !== 'alipay' && ctx.provider !== 'wechatpay') return { ok: false, reason: 'agreements of this channel are not handled' };
  // WeChat's contract notify names no appid; its mch_id and plan_id were checked by the adapter.
  if (ctx.provider === 'alipay' && n.appId && n.appId !== (ctx.cred as AlipayCredentials).appId) return { ok: false, reason: 'app id does not match' };
  const a = await findAgreementByChannelNo(deps.db, ctx.provider, { external: n.externalAgreementNo, channelNo: n.channelAgreementNo });
  if (!a || a.app_id !== ctx.appId || a.livemode !== ctx.livemode) return { ok: false, reason: 'no such agreement for this app' };
  if (a.channel_agreement_no && n.channelAgreementNo && a.channel_agreement_no !== n.channelAgreementNo) return { ok: false, reason: 'agreement_no does not match the agreement' };

  if (n.status === 'active') {
    if (a.status === 'pending') {
      const changed = await moveAgreement(deps, a, 'active', { channel_agreement_no: n.channelAgreementNo });
      if (changed) deps.logger.info('agreement signed', { agreement_id: a.id });
      return { ok: true, changed };
    }
    if (a.status === 'terminated' && !a.channel_agreement_no && n.channelAgreementNo) {
      // Ended before the customer signed: the late signature must not leave a live mandate behind.
      await endAtChannel(deps, a, n.channelAgreementNo);
      await deps.db('agreements').where({ id: a.id }).update({ channel_agreement_no: n.channelAgreementNo, updated_ms: Date.now() });
    }
    return { ok: true, changed: false };
  }
  if (a.status === 'terminated') return { ok: true, changed: false };
  // An unsign we did not ask for: the wallet user cancelled (or the channel ended it).
  const changed = await moveAgreement(deps, a, 'terminated', { terminated_reason: n.terminatedBy ?? 'customer' });
  if (changed) deps.logger.info('agreement terminated by the channel', { agreement_id: a.id });
  return { ok: true, changed };
}
