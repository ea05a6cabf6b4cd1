import type { Deps } from '../deps.ts';
import { newId } from '../crypto.ts';
import { ChannelRequestError, SignatureError } from '../errors.ts';
import type { ChannelNotification, InboundMessage, Provider } from '../channels/types.ts';
import { channelFor } from '../channels/registry.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { findAttemptByOrderNo, listAttempts, type PaymentRow } from '../payments/repo.ts';
import { insertChannelMessage, type ChannelMessageRow } from './repo.ts';
import { boundedJson, claimedOrderNo, parseBody, scrubInbound, scrubObject, scrubValue } from './scrub.ts';

/**
 * Records what channels said and were told (migration 040), for a payment's timeline in the
 * console. Recording never fails or slows the caller: rows are built after the fact and written
 * by the group-commit batcher without being awaited; a failed write is logged and forgotten.
 */

export type MessageKind = 'notify' | 'return' | 'create' | 'query' | 'close' | 'refund';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The creation time (ms) newId wrote into an id's first 8 characters after the prefix. */
export function idTimeMs(id: string): number {
  const time = id.slice(id.indexOf('_') + 1, id.indexOf('_') + 9);
  let t = 0;
  for (const c of time) t = t * 62 + ALPHABET.indexOf(c);
  return t;
}

/** When a message began (arrived, or the call started): its id, made then, orders it among the payment's other objects. */
export interface MessageClock {
  id: string;
  startedAt: number;
}
export function messageClock(): MessageClock {
  return { id: newId('msg'), startedAt: performance.now() };
}

export interface MessageFacts {
  appId: string;
  livemode?: boolean | null;
  provider: string;
  kind: MessageKind;
  direction: 'in' | 'out';
  paymentId?: string | null;
  attemptId?: string | null;
  refundId?: string | null;
  orderNo?: string | null;
  httpStatus?: number | null;
  verification: ChannelMessageRow['verification'];
  reason?: string | null;
  /** Already scrubbed by the caller's rules, or plain data scrubbed here by field name. */
  body: unknown;
  durationMs?: number | null;
}

/** Writes one record in the background; never throws, never awaited by the money path. */
export function recordChannelMessage(deps: Deps, at: MessageClock, f: MessageFacts): Promise<void> {
  let row: ChannelMessageRow;
  try {
    const { body, bytes } = boundedJson(scrubValue('', f.body));
    row = {
      id: at.id,
      app_id: f.appId.slice(0, 40),
      livemode: f.livemode ?? null,
      provider: f.provider.slice(0, 16),
      kind: f.kind,
      direction: f.direction,
      payment_id: f.paymentId ?? null,
      attempt_id: f.attemptId ?? null,
      refund_id: f.refundId ?? null,
      order_no: f.orderNo ? f.orderNo.slice(0, 64) : null,
      http_status: f.httpStatus ?? null,
      verification: f.verification,
      reason: f.reason ? f.reason.slice(0, 500) : null,
      body,
      body_bytes: bytes,
      duration_ms: f.durationMs ?? Math.round(performance.now() - at.startedAt),
      created_ms: idTimeMs(at.id),
    };
  } catch (err) {
    deps.logger.warn('channel message not recorded', { kind: f.kind, provider: f.provider, err });
    return Promise.resolve();
  }
  return insertChannelMessage(deps.db, row).then(
    () => undefined,
    (err) => deps.logger.warn('channel message not recorded', { kind: f.kind, provider: f.provider, payment_id: f.paymentId, err }),
  );
}

/** Which of the payment's objects an outbound call was about. */
export interface CallSubject {
  appId: string;
  livemode: boolean;
  provider: Provider;
  paymentId: string;
  attemptId?: string;
  refundId?: string;
  orderNo: string;
}

/**
 * Makes an adapter call and records it: the request's summary and the normalized result, or the
 * fault. An answer whose signature does not verify is 'refused'; a channel's own refusal
 * (ChannelRequestError) is a verified answer with its reason; no answer is 'error'.
 */
export async function recordedCall<T>(
  deps: Deps, kind: MessageKind, subject: CallSubject, request: Record<string, unknown>, call: () => Promise<T>,
  summarize: (result: T) => unknown = (r) => r,
): Promise<T> {
  const at = messageClock();
  const base = { appId: subject.appId, livemode: subject.livemode, provider: subject.provider, kind, direction: 'out' as const,
    paymentId: subject.paymentId, attemptId: subject.attemptId, refundId: subject.refundId, orderNo: subject.orderNo };
  let result: T;
  try {
    result = await call();
  } catch (err) {
    const e = err as Error & { code?: string };
    const verification = err instanceof SignatureError ? 'refused' : err instanceof ChannelRequestError ? 'verified' : 'error';
    void recordChannelMessage(deps, at, { ...base, verification, reason: `${e.name ?? 'Error'}: ${e.message}`, body: { request, error: { name: e.name, code: e.code ?? null } } });
    throw err;
  }
  let summary: unknown;
  try {
    summary = summarize(result) ?? null;
  } catch {
    summary = '[not summarized]'; // the record must never cost the call its answer
  }
  void recordChannelMessage(deps, at, { ...base, verification: 'verified', body: { request, result: summary } });
  return result;
}

/** What the notify handler learnt while deciding (notify.ts fills it in as it goes). */
export interface NotifySeen {
  /** Whether the app has any config of this channel: a notify to an app without one is not kept. */
  configured?: boolean;
  livemode?: boolean;
  notification?: ChannelNotification;
  paymentId?: string;
  attemptId?: string;
  refundId?: string;
}

/**
 * Records an inbound notify, verified or refused. The raw body is kept scrubbed; a verified one
 * also keeps the normalized notification (a WeChat v3 resource is kept only as that: its
 * plaintext holds the payer). A refused message is filed under the payment whose order number it
 * claims, so the merchant sees a forged or misconfigured notify on that payment's page.
 */
export function recordNotify(
  deps: Deps, at: MessageClock, provider: Provider, appId: string, msg: InboundMessage,
  outcome: { ack: { status: number }; accepted: boolean; reason?: string }, seen: NotifySeen,
): void {
  if (!seen.configured) return;
  // After the answer is on its way: parsing and scrubbing cost the channel's wait nothing.
  setImmediate(() => void (async () => {
    const fields = parseBody(msg.contentType, msg.body);
    const n = seen.notification;
    let { paymentId, attemptId, livemode } = seen;
    const orderNo = (n && 'orderNo' in n ? n.orderNo : undefined) ?? claimedOrderNo(fields);
    if (!paymentId && orderNo) {
      const attempt = await findAttemptByOrderNo(deps.db, provider, orderNo);
      if (attempt && attempt.app_id === appId) {
        paymentId = attempt.payment_id;
        attemptId = attempt.id;
        livemode ??= attempt.livemode;
      }
    }
    await recordChannelMessage(deps, at, {
      appId, livemode, provider, kind: 'notify', direction: 'in', paymentId, attemptId, refundId: seen.refundId, orderNo,
      httpStatus: outcome.ack.status, verification: outcome.accepted ? 'verified' : 'refused', reason: outcome.accepted ? null : outcome.reason,
      // The normalized notification only where the body does not say it in clear (WeChat v3's
      // encrypted resource): elsewhere it would double the row, and the notify bench's WAL.
      body: { ...scrubInbound(msg), ...(n && opaque(fields) ? { notification: scrubObject(n as unknown as Record<string, unknown>) } : {}) },
    });
  })().catch((err) => deps.logger.warn('channel message not recorded', { kind: 'notify', provider, err })));
}

/** A body whose content is not readable as it came: unparsed, or carrying ciphertext (WeChat Pay API v3). */
function opaque(fields: Record<string, unknown> | undefined): boolean {
  const resource = fields?.resource;
  return !fields || (typeof resource === 'object' && resource !== null && 'ciphertext' in resource);
}

/**
 * Records the browser's return from a channel. Nothing in it is trusted (the channel is asked),
 * but where the adapter can check its signature (parseReturn) the result is shown.
 */
export function recordBrowserReturn(deps: Deps, payment: PaymentRow, orderNo: string | undefined, params: Record<string, unknown>): void {
  const at = messageClock();
  void (async () => {
    const attempts = await listAttempts(deps.db, payment.id);
    const attempt = (orderNo && attempts.find((a) => a.channel_order_no === orderNo)) || attempts.at(-1);
    if (!attempt) return;
    const flat: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) if (typeof v === 'string') flat[k] = v;
    const adapter = channelFor(attempt.provider);
    let verification: ChannelMessageRow['verification'] = 'unchecked';
    let reason: string | null = 'not checked: the gateway asks the channel instead';
    if (adapter?.parseReturn && Object.keys(flat).some((k) => k !== 'out_trade_no')) {
      try {
        const cred = await getCredentials(deps, payment.app_id, attempt.provider, payment.livemode);
        const r = adapter.parseReturn(cred, flat);
        verification = r.orderNo === attempt.channel_order_no ? 'verified' : 'refused';
        reason = verification === 'verified' ? null : 'the return names another order';
      } catch (err) {
        verification = 'refused';
        reason = (err as Error).message;
      }
    }
    await recordChannelMessage(deps, at, {
      appId: payment.app_id, livemode: payment.livemode, provider: attempt.provider, kind: 'return', direction: 'in',
      paymentId: payment.id, attemptId: attempt.id, orderNo: attempt.channel_order_no, verification, reason, body: { params: scrubObject(flat) },
    });
  })().catch((err) => deps.logger.warn('channel message not recorded', { kind: 'return', payment_id: payment.id, err }));
}
