/** What happens to a Checkout Session at the simulator: the buyer's outcomes on the page, and expiry. */
import type { SandboxDeps, NotifyMode } from '../types.ts';
import { findAccount, findSession, updateSession, type StripeSession } from './store.ts';
import { sessionObject } from './objects.ts';
import { eventOf, sendEvents } from './notify.ts';
import { newObjectId } from './wire.ts';

/**
 * Expires an open session (its expires_at passed, or `force`: the API's expire), cancels its
 * PaymentIntent and sends checkout.session.expired a moment later (Stripe's events follow the
 * answer; the gateway records its own close first). Returns the session as it now stands.
 */
export async function expireIfDue(deps: SandboxDeps, s: StripeSession, force = false): Promise<StripeSession> {
  if (s.status !== 'open' || (!force && s.data.expiresAt > Math.floor(Date.now() / 1000))) return s;
  const data = { ...s.data, piStatus: 'canceled' as const };
  if (!(await updateSession(deps.db, s, 'expired', data))) return (await findSession(deps.db, s.accountId, s.id))!;
  const expired: StripeSession = { ...s, status: 'expired', data };
  const account = await findAccount(deps.db, deps.masterKey, s.accountId);
  if (account) void sendEvents(account, [eventOf('checkout.session.expired', sessionObject(deps.publicUrl, expired))], 'delay:1', deps.logger);
  return expired;
}

export type BuyerAction = 'pay' | 'apple_pay' | 'decline' | '3ds' | '3ds_pay' | '3ds_fail';

export type ActionResult =
  | { ok: true; session: StripeSession; redirect?: string; challenge?: boolean }
  | { ok: false; status: number; code: string; message: string };

/**
 * The buyer submits the hosted page: pay (by card or Apple Pay), a decline (the buyer stays on
 * the page and may try again, as on hosted Checkout), or a 3-D Secure challenge first. A paid
 * session sends checkout.session.completed per the notify mode, before the answer.
 */
export async function buyerAction(deps: SandboxDeps, s0: StripeSession, action: BuyerAction, mode: NotifyMode): Promise<ActionResult> {
  const s = await expireIfDue(deps, s0);
  if (s.status !== 'open') return { ok: false, status: 409, code: `session_${s.status}`, message: `This Checkout Session is ${s.status}.` };
  if (action === '3ds') {
    const data = { ...s.data, piStarted: true, piStatus: 'requires_action' as const };
    if (!(await updateSession(deps.db, s, 'open', data))) return { ok: false, status: 409, code: 'conflict', message: 'The session changed meanwhile.' };
    return { ok: true, session: { ...s, data }, challenge: true };
  }
  if (action === 'decline' || action === '3ds_fail') {
    const lastPaymentError = action === 'decline'
      ? { code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' }
      : { code: 'payment_intent_authentication_failure', message: 'The provided PaymentMethod has failed authentication.' };
    const data = { ...s.data, piStarted: true, piStatus: 'requires_payment_method' as const, lastPaymentError };
    if (!(await updateSession(deps.db, s, 'open', data))) return { ok: false, status: 409, code: 'conflict', message: 'The session changed meanwhile.' };
    return { ok: true, session: { ...s, data } };
  }
  if (action === '3ds_pay' && s.data.piStatus !== 'requires_action') return { ok: false, status: 409, code: 'no_challenge', message: 'No 3-D Secure challenge is pending.' };
  const now = Math.floor(Date.now() / 1000);
  const data = {
    ...s.data, piStarted: true, piStatus: 'succeeded' as const, paymentStatus: 'paid' as const, lastPaymentError: undefined,
    chargeId: newObjectId('ch', 24), chargeCreated: now, wallet: action === 'apple_pay' ? 'apple_pay' : 'card',
  };
  if (!(await updateSession(deps.db, s, 'complete', data))) return { ok: false, status: 409, code: 'conflict', message: 'The session changed meanwhile.' };
  const paid: StripeSession = { ...s, status: 'complete', data };
  const account = await findAccount(deps.db, deps.masterKey, s.accountId);
  if (account) await sendEvents(account, [eventOf('checkout.session.completed', sessionObject(deps.publicUrl, paid))], mode, deps.logger);
  return { ok: true, session: paid, redirect: data.successUrl.replace('{CHECKOUT_SESSION_ID}', s.id) };
}
