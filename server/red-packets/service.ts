/**
 * Red packets (红包, DESIGN §2.4). Sent exactly once the way transfers are (transfers/service.ts):
 * the channel's number (packet_no: WeChat mch_billno, Alipay out_biz_no) is fixed with the row and
 * every retry keeps it and the body; a packet that may have reached the channel is queried before
 * it is sent again. WeChat has no notify for them: the worker polls gethbinfo until the packet is
 * received, refunded (left unopened for 24 h) or failed — SENT is not final, and "not found"
 * while sending is not a failure. Money out counts against the app's single and daily limits.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import type { AuthContext, Deps } from '../deps.ts';
import { newId, nowSeconds } from '../crypto.ts';
import { invalid, notFound } from '../errors.ts';
import { paginate } from '../http/pagination.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { insertEvent, type EventType } from '../events/repo.ts';
import { channelFor, redPacketChannelFor } from '../channels/registry.ts';
import type { Provider } from '../channels/types.ts';
import type { RedPacketNotification, RedPacketRequest, RedPacketResult } from '../channels/payouts.ts';
import { amountSchema, clientIpSchema, currencySchema, metadataSchema } from '../payments/validation.ts';
import { isUniqueViolation } from '../payments/repo.ts';
import { beijingDay, releaseDaily, reserveDaily, transferSettingsOf } from '../transfers/limits.ts';
import { isProductionCredential, productionHint } from '../transfers/live.ts';
import { askChannel } from '../transfers/ask.ts';
import { recipientSchema, transferRetryDelay, leaseMsOf, type MoneyOutNoticeOutcome } from '../transfers/service.ts';
import {
  FINAL_RED_PACKET_STATUSES, RED_PACKET_CHANNELS, findRedPacket, findRedPacketById, findRedPacketByNo, redPacketFromRow, toRedPacketObject,
  type RedPacketRow, type RedPacketStatusName,
} from './repo.ts';

const text = (max: number) => z.string({ error: 'is required' }).trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

export const createRedPacketSchema = z
  .object({
    channel: z.enum(RED_PACKET_CHANNELS, { error: 'must be alipay or wechatpay' }),
    amount: amountSchema,
    currency: currencySchema.default('CNY'),
    out_red_packet_no: z.string({ error: 'is required' }).regex(/^[A-Za-z0-9_\-|*.:]{1,64}$/, 'must be 1–64 characters of letters, digits and _-|*.: (no spaces)'),
    recipient: recipientSchema,
    sender_name: text(32).describe('WeChat send_name: who the packet is from'),
    wishing: text(128),
    act_name: text(32),
    remark: text(256),
    scene_id: z.enum(['PRODUCT_1', 'PRODUCT_2', 'PRODUCT_3', 'PRODUCT_4', 'PRODUCT_5', 'PRODUCT_6', 'PRODUCT_7', 'PRODUCT_8'], { error: 'must be PRODUCT_1 … PRODUCT_8' }).optional()
      .describe('WeChat scene; required below ¥1 or above ¥200'),
    client_ip: clientIpSchema.optional().describe("the merchant server's IP WeChat records (default: the caller's)"),
    metadata: metadataSchema.default({}),
  })
  .strict();

export type CreateRedPacketInput = z.infer<typeof createRedPacketSchema>;

export async function createRedPacket(deps: Deps, auth: AuthContext, input: CreateRedPacketInput, ctx: { ip?: string } = {}) {
  const adapter = redPacketChannelFor(input.channel);
  if (!adapter) throw invalid('channel_unsupported', `Red packets through ${input.channel} are not available in this build.`, 'channel');
  if (input.currency !== 'CNY') throw invalid('currency_unsupported', `${input.channel} red packets are in CNY only.`, 'currency');
  if (!adapter.recipientTypes.includes(input.recipient.type)) {
    throw invalid('recipient_type_unsupported', `${input.channel} red packets go to recipients of type ${adapter.recipientTypes.join(', ')}, not ${input.recipient.type}.`, 'recipient.type');
  }
  const bad = adapter.validate({
    amount: input.amount, currency: input.currency, recipient: input.recipient, senderName: input.sender_name,
    wishing: input.wishing, actName: input.act_name, remark: input.remark, sceneId: input.scene_id,
  });
  if (bad) throw invalid('parameter_invalid', bad.message, bad.param);
  const cred = await getCredentials(deps, auth.appId, input.channel, auth.livemode);
  if (auth.livemode && !isProductionCredential(input.channel, cred)) {
    throw invalid('test_credentials', `This app's live ${input.channel} config does not point at the channel's production API (${productionHint(input.channel, cred)}). Store the live credentials first.`, 'channel');
  }
  const settings = await transferSettingsOf(deps.db, auth.appId, auth.livemode);
  if (settings.single_limit !== null && input.amount > settings.single_limit) {
    throw invalid('amount_over_limit', `Amount ${input.amount} is over this app's single-transfer limit of ${settings.single_limit}.`, 'amount');
  }
  const id = newId('rp');
  const created = nowSeconds();
  const lease = Date.now() + leaseMsOf(deps);
  const ip = input.client_ip ?? (ctx.ip && clientIpSchema.safeParse(ctx.ip.replace(/^::ffff:/, '')).success ? ctx.ip.replace(/^::ffff:/, '') : '127.0.0.1');
  const row = {
    id,
    app_id: auth.appId,
    livemode: auth.livemode,
    channel: input.channel,
    amount: input.amount,
    currency: input.currency,
    out_red_packet_no: input.out_red_packet_no,
    // WeChat mch_billno ≤ 28 letters and digits: R + the id's time and random parts (25).
    packet_no: `R${id.slice(3)}`,
    recipient_type: input.recipient.type,
    recipient_account: input.recipient.account,
    recipient_name: input.recipient.name ?? null,
    sender_name: input.sender_name,
    wishing: input.wishing,
    act_name: input.act_name,
    remark: input.remark,
    scene_id: input.scene_id ?? null,
    client_ip: ip,
    status: 'sending',
    failure_code: null,
    failure_message: null,
    channel_packet_no: null,
    metadata: JSON.stringify(input.metadata),
    sent_at: null,
    received_at: null,
    refunded_at: null,
    created,
    updated_ms: Date.now(),
    next_query_at_ms: lease,
    submit_count: 0,
    query_count: 0,
  };
  try {
    await deps.db.transaction(async (trx) => {
      await trx('red_packets').insert(row);
      if (!(await reserveDaily(trx, { appId: auth.appId, livemode: auth.livemode, day: beijingDay(created) }, input.amount, settings.daily_limit))) {
        throw invalid('daily_limit_exceeded', `This red packet would pass this app's daily transfer limit of ${settings.daily_limit}.`, 'amount');
      }
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw invalid('out_red_packet_no_taken', `A red packet with out_red_packet_no '${input.out_red_packet_no}' already exists.`, 'out_red_packet_no');
    throw err;
  }
  await driveRedPacket(deps, redPacketFromRow(row), lease);
  return toRedPacketObject((await findRedPacketById(deps.db, id))!);
}

export async function redPacketOf(deps: Deps, auth: AuthContext, id: string): Promise<RedPacketRow> {
  const p = await findRedPacket(deps.db, auth, id);
  if (!p) throw notFound('red_packet', id);
  return p;
}

export async function retrieveRedPacket(deps: Deps, auth: AuthContext, id: string) {
  return toRedPacketObject(await redPacketOf(deps, auth, id));
}

export function listRedPackets(deps: Deps, auth: AuthContext, f: { limit: number; starting_after?: string; ending_before?: string; status?: string; channel?: string; out_red_packet_no?: string }) {
  const scoped = () => {
    const q = deps.db('red_packets').where({ app_id: auth.appId, livemode: auth.livemode });
    if (f.status) q.where('status', f.status);
    if (f.channel) q.where('channel', f.channel);
    if (f.out_red_packet_no) q.where('out_red_packet_no', f.out_red_packet_no);
    return q;
  };
  return paginate(scoped, { ...f, url: '/v1/red_packets' }, (r) => toRedPacketObject(redPacketFromRow(r)));
}

function requestOf(p: RedPacketRow): RedPacketRequest {
  return {
    packetNo: p.packet_no,
    amount: p.amount,
    currency: p.currency,
    recipient: { type: p.recipient_type, account: p.recipient_account, ...(p.recipient_name ? { name: p.recipient_name } : {}) },
    senderName: p.sender_name,
    wishing: p.wishing,
    actName: p.act_name,
    remark: p.remark,
    ...(p.scene_id ? { sceneId: p.scene_id } : {}),
    clientIp: p.client_ip,
    createdAt: p.created,
  };
}

/** One turn at the channel for a packet whose lease this process holds (see transfers' driveTransfer). */
export async function driveRedPacket(deps: Deps, p: RedPacketRow, lease: number): Promise<void> {
  const adapter = redPacketChannelFor(p.channel)!;
  const req = requestOf(p);
  const asked = await askChannel<RedPacketResult>(deps, {
    table: 'red_packets', id: p.id, submitCount: p.submit_count,
    queryFirst: p.submit_count > 0, mayResend: p.submit_count === 0 || p.status === 'sending',
    query: async () => adapter.query(await getCredentials(deps, p.app_id, p.channel, p.livemode), req),
    send: async () => adapter.send(await getCredentials(deps, p.app_id, p.channel, p.livemode), req),
  });
  if ('unknown' in asked) {
    deps.logger.warn('red packet: no answer from the channel, will query', { red_packet_id: p.id, err: asked.unknown instanceof Error ? asked.unknown.message : String(asked.unknown) });
    await reschedule(deps, p, lease);
    return;
  }
  const result = asked.result;
  const moved = await applyRedPacketResult(deps, p, result);
  const now = moved ? (await findRedPacketById(deps.db, p.id))! : p;
  if (!FINAL_RED_PACKET_STATUSES.includes(now.status)) await reschedule(deps, now, lease);
}

async function reschedule(deps: Deps, p: RedPacketRow, lease: number): Promise<void> {
  await deps.db('red_packets')
    .where({ id: p.id, next_query_at_ms: lease })
    .whereIn('status', ['sending', 'sent'])
    .update({ next_query_at_ms: Date.now() + transferRetryDelay(p.submit_count + p.query_count) });
}

const EVENT_OF: Record<Exclude<RedPacketStatusName, 'sending'>, EventType> = {
  sent: 'red_packet.sent',
  received: 'red_packet.received',
  refunded: 'red_packet.refunded',
  failed: 'red_packet.failed',
};

/** Which statuses a packet may come from to reach each one. */
const FROM: Record<Exclude<RedPacketStatusName, 'sending'>, RedPacketStatusName[]> = {
  sent: ['sending'],
  received: ['sending', 'sent'],
  refunded: ['sending', 'sent'],
  failed: ['sending'],
};

/** Applies the channel's word on a packet, conditionally on its status, with its events; whether it moved. */
export async function applyRedPacketResult(deps: Deps, p: RedPacketRow, r: RedPacketResult): Promise<boolean> {
  if (r.status === 'not_found' || r.status === 'sending') return false;
  const to = r.status;
  const now = nowSeconds();
  const changes: Record<string, unknown> = { status: to, updated_ms: Date.now() };
  if (r.channelPacketNo) changes.channel_packet_no = r.channelPacketNo;
  if (to !== 'failed') changes.sent_at = p.sent_at ?? now;
  if (to === 'received') changes.received_at = r.receivedAt ?? now;
  if (to === 'refunded') changes.refunded_at = r.refundedAt ?? now;
  if (to === 'failed') {
    changes.failure_code = (r.failureCode ?? 'failed').slice(0, 64);
    changes.failure_message = r.failureMessage?.slice(0, 500) ?? null;
  }
  if (FINAL_RED_PACKET_STATUSES.includes(to)) changes.next_query_at_ms = null;
  const moved = await deps.db.transaction(async (trx: Knex.Transaction) => {
    const n = await trx('red_packets').where({ id: p.id }).whereIn('status', FROM[to]).update(changes);
    if (n !== 1) return false;
    if (to === 'failed' || to === 'refunded') await releaseDaily(trx, { appId: p.app_id, livemode: p.livemode, day: beijingDay(p.created) }, p.amount);
    const obj = toRedPacketObject(redPacketFromRow(await trx('red_packets').where({ id: p.id }).first()));
    // A packet seen received or refunded before it was seen sent was sent all the same: the merchant hears both.
    if (p.status === 'sending' && (to === 'received' || to === 'refunded')) {
      await insertEvent(trx, { appId: p.app_id, livemode: p.livemode, type: 'red_packet.sent', object: obj });
    }
    await insertEvent(trx, { appId: p.app_id, livemode: p.livemode, type: EVENT_OF[to], object: obj });
    return true;
  });
  if (moved) {
    deps.logger.info('red packet moved', { red_packet_id: p.id, status: to });
    await deps.bus.publish('webhooks', p.id);
  }
  return moved;
}

/** A verified red-packet result pushed by the channel (Alipay's order.changed for STD_RED_PACKET). */
export async function applyRedPacketNotice(
  deps: Deps,
  ctx: { provider: Provider; appId: string; livemode: boolean; cred: unknown },
  n: RedPacketNotification,
): Promise<MoneyOutNoticeOutcome> {
  if (ctx.provider !== 'alipay' && ctx.provider !== 'wechatpay') return { ok: false, reason: 'red packets of this channel are not handled' };
  const channel = channelFor(ctx.provider)!;
  if (n.appId && n.appId !== channel.appIdOf(ctx.cred)) return { ok: false, reason: 'app id does not match' };
  const merchantId = channel.merchantIdOf(ctx.cred);
  if (merchantId && n.merchantId && n.merchantId !== merchantId) return { ok: false, reason: 'merchant id does not match' };
  const p = await findRedPacketByNo(deps.db, ctx.provider, n.packetNo);
  if (!p || p.app_id !== ctx.appId || p.livemode !== ctx.livemode) return { ok: false, reason: 'no such red packet for this app' };
  if (n.amount !== p.amount) return { ok: false, reason: 'amount does not match the red packet' };
  const changed = await applyRedPacketResult(deps, p, n);
  return { ok: true, changed };
}
