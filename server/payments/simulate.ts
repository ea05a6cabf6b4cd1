import { z } from 'zod';
import type { AuthContext, Deps } from '../deps.ts';
import { CHANNEL_CODES, providerOf } from '../channels/types.ts';
import { SANDBOX_OFF, channelFor, hasSimulator, sandboxFor } from '../channels/registry.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import type { NotifyMode } from '../sandbox/types.ts';
import { invalid, notFound } from '../errors.ts';
import { findPayment, listAttempts } from './repo.ts';
import { refreshAttempt, retrievePayment, startAttempt, type PaymentObject } from './service.ts';

export const simulateSchema = z
  .object({
    channel: z.enum(CHANNEL_CODES, { error: `must be one of ${CHANNEL_CODES.join(', ')}` }).optional(),
    outcome: z.enum(['pay', 'fail', 'cancel']).default('pay'),
    notify: z
      .string()
      .regex(/^(normal|duplicate|drop|delay:\d{1,5})$/, 'must be normal, duplicate, drop or delay:<seconds>')
      .default('normal'),
  })
  .strict();

/** A customer's address when the API caller's is unknown: TEST-NET-1 (RFC 5737), never routed. */
const DOCUMENTATION_IP = '192.0.2.1';

/**
 * Acts as the customer and the channel, like Stripe's test helpers: pays (or fails, or cancels)
 * an order on the simulator's payer endpoint, which sends the channel's real signed notify to
 * /notify. The order is the payment's newest placed, still pending attempt on that channel (the
 * direct API: created with channel, or confirmed), else a new one placed at the simulator over
 * HTTP. Placing, it brings what a customer's browser would: an IP address (WeChat H5 needs one;
 * the payment's client_ip if it has one, else the API caller's) and the simulator payer's openid
 * (JSAPI).
 */
export async function simulatePayment(
  deps: Deps, auth: AuthContext, id: string, input: z.infer<typeof simulateSchema>, caller: { ip?: string } = {},
): Promise<PaymentObject> {
  const payment = await findPayment(deps.db, auth, id);
  if (!payment) throw notFound('payment', id);
  const channel = input.channel ?? payment.channel;
  if (!channel) throw invalid('parameter_missing', 'channel is required: this payment has no channel yet.', 'channel');
  if (channel === 'alipay_agreement' || channel === 'wechat_papay') throw invalid('parameter_invalid', "A subscription's charge has no customer step: advance the subscription's test clock (POST /v1/test_helpers/subscriptions/:id/advance).", 'channel');
  if (channel === 'balance') throw invalid('parameter_invalid', 'A balance payment has nothing to simulate: it succeeds at once on create or confirm.', 'channel');
  if (payment.channel && input.channel && payment.channel !== input.channel) {
    throw invalid('parameter_invalid', `This payment was created for channel ${payment.channel}.`, 'channel');
  }
  const provider = providerOf(channel);
  if (hasSimulator(provider) && !deps.config.sandbox) {
    throw invalid('sandbox_disabled', `Test payments cannot be simulated: ${SANDBOX_OFF}. Pay them on the channel's own sandbox.`);
  }
  const sandbox = sandboxFor(deps.config, provider);
  if (!sandbox) throw invalid('channel_unavailable', `Channel ${channel} has no simulator yet.`, 'channel');
  const sandboxDeps = { db: deps.db, publicUrl: deps.config.publicUrl, masterKey: deps.config.masterKeyBytes, logger: deps.logger };
  const cred = await getCredentials(deps, payment.app_id, provider, payment.livemode);
  const channelAppId = channelFor(provider)!.appIdOf(cred, channel);
  let target = await placedAttempt(deps, payment.id, channel);
  if (target) {
    // The customer may have paid it already (its notify lost): the channel is asked first, as
    // the payment worker would, so an order is never paid twice by the helper.
    await refreshAttempt(deps, target);
    target = await placedAttempt(deps, payment.id, channel);
    const now = await findPayment(deps.db, auth, id);
    if (now?.status !== 'pending') return retrievePayment(deps, auth, id);
  }
  if (!target) {
    // In-app channels need the payer's id at the channel; the simulator's payer stands in.
    const openid = channel === 'wechat_jsapi' ? sandbox.payerId?.(sandboxDeps, channelAppId) : undefined;
    const clientIp = payment.client_ip ?? caller.ip ?? DOCUMENTATION_IP;
    const { attempt, result } = await startAttempt(deps, payment, channel, { clientIp, openid });
    if (!result.ok) return retrievePayment(deps, auth, id);
    target = attempt;
  }
  await sandbox.act(
    sandboxDeps,
    { appId: channelAppId, orderNo: target.channel_order_no, outcome: input.outcome, notify: input.notify as NotifyMode, action: target.action ?? undefined },
  );
  return retrievePayment(deps, auth, id);
}

/** The payment's newest order on this channel that was placed (it has an action) and is still open. */
async function placedAttempt(deps: Deps, paymentId: string, channel: string) {
  return (await listAttempts(deps.db, paymentId)).filter((a) => a.channel === channel && a.status === 'pending' && a.action).at(-1);
}
