import type { Knex } from 'knex';
import type { PaymentRow } from '../payments/repo.ts';
import type { RefundRow } from '../refunds/repo.ts';
import type { EventObject } from '../events/repo.ts';
import { messagesOfPayment, type ChannelMessageRow } from '../channel-messages/repo.ts';
import { idTimeMs } from '../channel-messages/service.ts';
import { deliveriesOfEvents } from './timeline-repo.ts';
import { money } from './format.ts';
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

const MESSAGE_TITLES: Record<string, string> = {
  notify: 'Notification from', return: 'Browser returned from', create: 'Order placed at', query: 'Query to',
  close: 'Close at', refund: 'Refund requested at',
};

function messageEntry(m: ChannelMessageRow): TimelineEntry {
  const facts = [m.direction === 'in' && m.http_status !== null ? `answered ${m.http_status}` : undefined, m.duration_ms !== null ? `${m.duration_ms} ms` : undefined];
  return {
    at: m.created_ms, kind: 'message', id: m.id, seq: seqOf(m.id), rank: RANK.message,
    title: `${MESSAGE_TITLES[m.kind] ?? m.kind} ${m.provider}`,
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

/** Gathers and orders the story; `attempts`, `refunds` and `events` are those the page already read. */
export async function paymentTimeline(db: Knex, payment: PaymentRow, attempts: any[], refunds: RefundRow[], events: EventObject[]): Promise<PaymentStory> {
  const MESSAGES = 300;
  const [messages, deliveries] = await Promise.all([messagesOfPayment(db, payment.id, MESSAGES), deliveriesOfEvents(db, events.map((e) => e.id))]);
  const entries: TimelineEntry[] = [{
    at: idTimeMs(payment.id), kind: 'created', id: payment.id, seq: seqOf(payment.id), rank: RANK.created,
    title: 'Payment created', detail: `${money(payment.amount, payment.currency)}${payment.channel ? ` for ${payment.channel}` : ''}`, code: payment.out_trade_no,
  }];
  for (const a of attempts) {
    entries.push({
      at: idTimeMs(a.id), kind: 'attempt', id: a.id, seq: seqOf(a.id), rank: RANK.attempt,
      title: `Attempt on ${a.channel}`, status: a.status, code: a.channel_order_no,
      detail: [a.channel_trade_no ? `channel trade number ${a.channel_trade_no}` : '', a.failure_code ? `${a.failure_code}: ${a.failure_message ?? ''}` : ''].filter(Boolean).join(' · '),
    });
  }
  for (const m of messages) entries.push(messageEntry(m));
  for (const r of refunds) {
    entries.push({
      at: idTimeMs(r.id), kind: 'refund', id: r.id, seq: seqOf(r.id), rank: RANK.refund,
      title: `Refund of ${money(r.amount, payment.currency)}`, status: r.status, code: r.id,
      detail: [r.automatic ? 'automatic: duplicate payment' : '', r.failure_message ?? r.reason ?? ''].filter(Boolean).join(' · '),
    });
  }
  for (const e of events) {
    entries.push({ at: idTimeMs(e.id), kind: 'event', id: e.id, seq: seqOf(e.id), rank: RANK.event, title: `Event ${e.type}`, code: e.id });
  }
  const typeOf = new Map(events.map((e) => [e.id, e.type]));
  for (const d of deliveries) {
    const href = `${BASE}/webhooks/${d.endpoint_id}/deliveries/${d.id}`;
    const common = { kind: 'webhook' as const, id: d.id, seq: '', rank: RANK.webhook, href, linkText: `delivery ${d.id}` };
    if (d.attempts.length === 0) {
      entries.push({ ...common, at: idTimeMs(d.id), title: `Webhook ${typeOf.get(d.event_id) ?? ''} queued for ${d.endpoint_url}`, status: d.status });
    }
    d.attempts.forEach((a, i) => {
      entries.push({
        ...common, at: a.attempted_at_ms,
        title: `Webhook ${typeOf.get(d.event_id) ?? ''} attempt ${i + 1} to ${d.endpoint_url}`,
        status: a.status_code !== null && a.status_code >= 200 && a.status_code < 300 ? 'delivered' : 'failed',
        detail: [a.status_code !== null ? `HTTP ${a.status_code}` : '', a.error ?? '', `${a.latency_ms} ms`].filter(Boolean).join(' · '),
      });
    });
  }
  entries.sort((x, y) => x.at - y.at || (x.seq && y.seq ? (x.seq < y.seq ? -1 : x.seq > y.seq ? 1 : 0) : x.rank - y.rank));
  return { entries, truncated: messages.length >= MESSAGES };
}
