import type { Deps } from '../deps.ts';
import { channelFor } from '../channels/registry.ts';
import type { Ack, ChannelNotification, InboundMessage, Provider } from '../channels/types.ts';
import { getAllCredentials } from '../apps/channel-configs.ts';
import { MalformedMessageError, SignatureError } from '../errors.ts';
import { applyAttemptOutcome } from './service.ts';
import { findAttemptByOrderNo, findPaymentById } from './repo.ts';
import { findRefund } from '../refunds/repo.ts';
import { applyRefundOutcome } from '../refunds/service.ts';
import { applyAgreementNotice } from '../agreements/service.ts';
import { applyTransferNotice } from '../transfers/service.ts';
import { applyRedPacketNotice } from '../red-packets/service.ts';
import { messageClock, recordNotify, type NotifySeen } from '../channel-messages/service.ts';

export interface NotifyOutcome {
  ack: Ack;
  accepted: boolean;
  reason?: string;
}

/**
 * Handles a channel's async notification for one app. Trusted only once the signature verifies
 * AND the channel app id, merchant and amount match the stored payment (DESIGN §1). A refused
 * notify gets the answer that makes the channel retry, and changes nothing.
 */
export async function handleNotify(deps: Deps, provider: Provider, appId: string, msg: InboundMessage): Promise<NotifyOutcome> {
  // Every message is kept for the payment's timeline, refused ones too (channel-messages/), in the background.
  const at = messageClock();
  const seen: NotifySeen = {};
  let outcome: NotifyOutcome;
  try {
    outcome = await decideNotify(deps, provider, appId, msg, seen);
  } catch (err) {
    recordNotify(deps, at, provider, appId, msg, { ack: { status: 500 }, accepted: false, reason: `not handled: ${(err as Error).message}` }, seen);
    throw err;
  }
  recordNotify(deps, at, provider, appId, msg, outcome, seen);
  return outcome;
}

/** handleNotify's decision; `seen` collects what it learnt, for the record. */
async function decideNotify(deps: Deps, provider: Provider, appId: string, msg: InboundMessage, seen: NotifySeen): Promise<NotifyOutcome> {
  const adapter = channelFor(provider);
  if (!adapter) return { ack: { status: 404, contentType: 'text/plain', body: 'unknown channel' }, accepted: false, reason: 'unknown channel' };
  const refuse = (reason: string, fields: Record<string, unknown> = {}): NotifyOutcome => {
    deps.logger.warn('channel notify refused', { provider, app_id: appId, reason, ...fields });
    return { ack: adapter.acknowledge(false, msg), accepted: false, reason };
  };

  // A notify names no mode: the config whose keys verify it is the one it was meant for.
  let verified: { livemode: boolean; cred: unknown; n: ChannelNotification } | undefined;
  let lastError: unknown;
  const tried = new Set<boolean>();
  const tryConfigs = async (fresh: boolean) => {
    const configs = await getAllCredentials(deps, appId, provider, { fresh }).catch(() => []);
    for (const c of configs) {
      if (tried.has(c.livemode)) continue;
      tried.add(c.livemode);
      try {
        verified = { ...c, n: await adapter.parseNotification(c.cred, msg) };
        return;
      } catch (err) {
        lastError = err;
      }
    }
  };
  await tryConfigs(false);
  // The cached list may predate a config provisioned since (by another gateway process).
  if (!verified) await tryConfigs(true);
  if (tried.size === 0) return refuse('no channel config for this app');
  seen.configured = true;
  if (!verified) {
    if (lastError instanceof SignatureError || lastError instanceof MalformedMessageError) return refuse(lastError.message);
    return refuse('notification could not be read', { err: lastError });
  }
  const { n, cred, livemode } = verified;
  Object.assign(seen, { livemode, notification: n });
  if (n.kind === 'ignored') {
    deps.logger.warn('channel message acknowledged without a change', { provider, app_id: appId, order_no: n.orderNo, notify_id: n.notifyId, reason: n.reason });
    return { ack: adapter.acknowledge(true, msg), accepted: true };
  }
  if (n.kind === 'agreement') {
    const outcome = await applyAgreementNotice(deps, { provider, appId, livemode, cred }, n);
    if (!outcome.ok) return refuse(outcome.reason, { external_agreement_no: n.externalAgreementNo, agreement_no: n.channelAgreementNo });
    return { ack: adapter.acknowledge(true, msg), accepted: true };
  }
  if (n.kind === 'transfer' || n.kind === 'red_packet') {
    const outcome = n.kind === 'transfer'
      ? await applyTransferNotice(deps, { provider, appId, livemode, cred }, n)
      : await applyRedPacketNotice(deps, { provider, appId, livemode, cred }, n);
    if (!outcome.ok) return refuse(outcome.reason, { [n.kind === 'transfer' ? 'transfer_no' : 'packet_no']: n.kind === 'transfer' ? n.transferNo : n.packetNo });
    return { ack: adapter.acknowledge(true, msg), accepted: true };
  }
  const merchantId = adapter.merchantIdOf(cred);
  if (merchantId && n.merchantId && n.merchantId !== merchantId) return refuse('merchant id does not match');

  const attempt = await findAttemptByOrderNo(deps.db, provider, n.orderNo);
  if (!attempt || attempt.app_id !== appId || attempt.livemode !== livemode) return refuse('no such order for this app', { order_no: n.orderNo });
  Object.assign(seen, { attemptId: attempt.id, paymentId: attempt.payment_id });
  // The channel app the order was placed under (WeChat's in-app orders: the mobile app's AppID).
  if (n.appId && n.appId !== adapter.appIdOf(cred, attempt.channel)) return refuse('app id does not match', { notify_app_id: n.appId });
  const payment = await findPaymentById(deps.db, attempt.payment_id);
  if (!payment) return refuse('no such payment');

  if (n.kind === 'payment') {
    if (n.amount !== payment.amount) return refuse('amount does not match the payment', { payment_id: payment.id, notified: n.amount, expected: payment.amount });
    if (n.currency !== undefined && n.currency !== payment.currency) return refuse('currency does not match the payment', { payment_id: payment.id, notified: n.currency, expected: payment.currency });
    if (n.status === 'succeeded') {
      const changed = await applyAttemptOutcome(deps, attempt, { status: 'succeeded', channelTradeNo: n.channelTradeNo, paidAt: n.paidAt, wallet: n.wallet });
      deps.logger.info('payment notify accepted', { payment_id: payment.id, attempt_id: attempt.id, duplicate: !changed });
    } else if (n.status === 'closed' && attempt.status === 'pending') {
      await applyAttemptOutcome(deps, attempt, { status: 'closed' });
    }
    return { ack: adapter.acknowledge(true, msg), accepted: true };
  }
  if (n.currency !== undefined && n.currency !== payment.currency) return refuse('currency does not match the payment', { payment_id: payment.id, notified: n.currency });
  // Our refund number at the channel is the refund's id.
  const refund = await findRefund(deps.db, n.refundNo);
  if (!refund || refund.payment_id !== payment.id || refund.attempt_id !== attempt.id) return refuse('no such refund for this order', { refund_no: n.refundNo });
  seen.refundId = refund.id;
  if (n.status !== 'pending') {
    const changed = await applyRefundOutcome(deps, refund.id, { status: n.status, channelRefundNo: n.channelRefundNo });
    deps.logger.info('refund notify accepted', { refund_id: refund.id, status: n.status, duplicate: !changed });
  }
  return { ack: adapter.acknowledge(true, msg), accepted: true };
}
