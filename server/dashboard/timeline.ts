import type { Knex } from 'knex';
import type { PaymentRow } from '../payments/repo.ts';
import type { RefundRow } from '../refunds/repo.ts';
import type { EventObject } from '../events/repo.ts';
import { messagesOfPayment, type ChannelMessageRow } from '../channel-messages/repo.ts';
import { idTimeMs } from '../channel-messages/service.ts';
import { deliveriesOfEvents } from './timeline-repo.ts';
import { money } from './format.ts';
import type { Lang, Translate } from './i18n.ts';
import { BASE } from './page.ts';

/**
 * A payment's whole story for its console page (issue 16): created, each attempt, every channel
 * message with its verification result, refunds, events, and each webhook attempt linked to its
 * delivery, in one list ordered by time. Objects carry their creation time to the millisecond in
 * their id (crypto.ts newId), and ids made in the same millisecond by one process sort in the order
 * they were made, so a notify comes before the event it caused even within one second.
 */

export interface TimelineEntry {
  /** unix ms */
  at: number;
  kind: 'created' | 'attempt' | 'message' | 'refund' | 'event' | 'webhook';
  /** The object's id (data attribute, anchor). */
  id: string;
  title: string;
  /** A status badge: an attempt's or refund's status, a message's verification, a webhook's outcome. */
  status?: string;
  detail?: string;
  code?: string;
  href?: string;
  linkText?: string;
  /** The scrubbed body of a channel message, shown in a <details>. */
  body?: string;
  /** Tie-breaks at one ms: the id's time and sequence, else the kind's rank. */
  seq: string;
  rank: number;
}

const RANK: Record<TimelineEntry['kind'], number> = { created: 0, attempt: 1, refund: 1, message: 2, event: 3, webhook: 4 };
const seqOf = (id: string) => id.slice(id.indexOf('_') + 1, id.indexOf('_') + 13);

/** A channel message's title, one whole sentence per kind (an unknown kind is shown as it is). */
function messageTitle(t: Translate, kind: string, provider: string): string {
  switch (kind) {
    case 'notify': return t('Notification from {provider}', { provider });
    case 'return': return t('Browser returned from {provider}', { provider });
    case 'create': return t('Order placed at {provider}', { provider });
    case 'query': return t('Query to {provider}', { provider });
    case 'close': return t('Close at {provider}', { provider });
    case 'refund': return t('Refund requested at {provider}', { provider });
    default: return `${kind} ${provider}`;
  }
}

function messageEntry(t: Translate, m: ChannelMessageRow): TimelineEntry {
  const facts = [m.direction === 'in' && m.http_status !== null ? t('answered {status}', { status: m.http_status }) : undefined, m.duration_ms !== null ? t('{ms} ms', { ms: m.duration_ms }) : undefined];
  return {
    at: m.created_ms, kind: 'message', id: m.id, seq: seqOf(m.id), rank: RANK.message,
    title: messageTitle(t, m.kind, m.provider),
    status: m.verification,
    detail: [m.reason, ...facts].filter(Boolean).join(' · '),
    code: m.refund_id ?? m.order_no ?? undefined,
    body: m.body === null ? undefined : indented(m.body),
  };
}

/** Stored compact; shown indented (a body cut at the bound is no longer JSON: shown as it is). */
function indented(body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

export interface PaymentStory {
  entries: TimelineEntry[];
  /** The message list reached its bound: older messages exist beyond it. */
  truncated: boolean;
}

/**
 * Gathers and orders the story; `attempts`, `refunds` and `events` are those the page already read.
 * Its sentences come from `t` (the page's tOf(res)) and its amounts in `lang`'s form.
 */
export async function paymentTimeline(db: Knex, payment: PaymentRow, attempts: any[], refunds: RefundRow[], events: EventObject[], t: Translate, lang: Lang = 'en'): Promise<PaymentStory> {
  const amount = (minor: number) => money(minor, payment.currency, lang);
  const MESSAGES = 300;
  const [messages, deliveries] = await Promise.all([messagesOfPayment(db, payment.id, MESSAGES), deliveriesOfEvents(db, events.map((e) => e.id))]);
  const entries: TimelineEntry[] = [{
    at: idTimeMs(payment.id), kind: 'created', id: payment.id, seq: seqOf(payment.id), rank: RANK.created,
    title: t('Payment created'), detail: payment.channel ? t('{amount} for {channel}', { amount: amount(payment.amount), channel: payment.channel }) : amount(payment.amount), code: payment.out_trade_no,
  }];
  for (const a of attempts) {
    entries.push({
      at: idTimeMs(a.id), kind: 'attempt', id: a.id, seq: seqOf(a.id), rank: RANK.attempt,
      title: t('Attempt on {channel}', { channel: a.channel }), status: a.status, code: a.channel_order_no,
      detail: [a.channel_trade_no ? t('channel trade number {no}', { no: a.channel_trade_no }) : '', a.failure_code ? `${a.failure_code}: ${a.failure_message ?? ''}` : ''].filter(Boolean).join(' · '),
    });
  }
  for (const m of messages) entries.push(messageEntry(t, m));
  for (const r of refunds) {
    entries.push({
      at: idTimeMs(r.id), kind: 'refund', id: r.id, seq: seqOf(r.id), rank: RANK.refund,
      title: t('Refund of {amount}', { amount: amount(r.amount) }), status: r.status, code: r.id,
      detail: [r.automatic ? t('automatic: duplicate payment') : '', r.failure_message ?? r.reason ?? ''].filter(Boolean).join(' · '),
    });
  }
  for (const e of events) {
    entries.push({ at: idTimeMs(e.id), kind: 'event', id: e.id, seq: seqOf(e.id), rank: RANK.event, title: t('Event {type}', { type: e.type }), code: e.id });
  }
  const typeOf = new Map(events.map((e) => [e.id, e.type]));
  for (const d of deliveries) {
    const href = `${BASE}/webhooks/${d.endpoint_id}/deliveries/${d.id}`;
    const common = { kind: 'webhook' as const, id: d.id, seq: '', rank: RANK.webhook, href, linkText: t('delivery {id}', { id: d.id }) };
    if (d.attempts.length === 0) {
      entries.push({ ...common, at: idTimeMs(d.id), title: t('Webhook {type} queued for {url}', { type: typeOf.get(d.event_id) ?? '', url: d.endpoint_url }), status: d.status });
    }
    d.attempts.forEach((a, i) => {
      entries.push({
        ...common, at: a.attempted_at_ms,
        title: t('Webhook {type} attempt {n} to {url}', { type: typeOf.get(d.event_id) ?? '', n: i + 1, url: d.endpoint_url }),
        status: a.status_code !== null && a.status_code >= 200 && a.status_code < 300 ? 'delivered' : 'failed',
        detail: [a.status_code !== null ? `HTTP ${a.status_code}` : '', a.error ?? '', t('{ms} ms', { ms: a.latency_ms })].filter(Boolean).join(' · '),
      });
    });
  }
  entries.sort((x, y) => x.at - y.at || (x.seq && y.seq ? (x.seq < y.seq ? -1 : x.seq > y.seq ? 1 : 0) : x.rank - y.rank));
  return { entries, truncated: messages.length >= MESSAGES };
}
