/**
 * Stripe-Signature: `t=<unix>,v1=<hex HMAC-SHA256(whsec, t + "." + raw body)>` (several v1 during
 * a secret rotation). Verified by the SDK's own webhooks.constructEvent on the raw body, with the
 * tolerance given (protocols/cards.md "Webhooks").
 */
import crypto from 'node:crypto';
import { MalformedMessageError, SignatureError } from '../../errors.ts';

let sdkModule: Promise<typeof import('stripe')> | undefined;

/** The verified event (parsed JSON); a bad or stale signature throws SignatureError, a body that is no JSON MalformedMessageError. */
export async function verifyEvent(raw: Buffer, header: string | undefined, secret: string, toleranceSeconds: number): Promise<unknown> {
  if (!header) throw new SignatureError('Stripe webhook carries no Stripe-Signature');
  const { default: Stripe } = await (sdkModule ??= import('stripe'));
  try {
    return Stripe.webhooks.constructEvent(raw, header, secret, toleranceSeconds);
  } catch (err) {
    const e = err as { type?: string; message?: string };
    if (e?.type === 'StripeSignatureVerificationError') throw new SignatureError(`Stripe-Signature refused: ${String(e.message ?? '').split('\n')[0]!.slice(0, 120)}`);
    throw new MalformedMessageError('Stripe webhook body is not JSON');
  }
}

/** The header Stripe sends for `payload` (the simulator signs with it). */
export function signatureHeader(payload: string, secret: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const v1 = crypto.createHmac('sha256', secret).update(`${timestamp}.${payload}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${v1}`;
}

/** localhost, 127.0.0.0/8, ::1: the only hosts plain HTTP may go to. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}
