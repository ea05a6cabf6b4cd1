import type { StatusBus } from '../deps.ts';
import type { PaymentRow } from '../payments/repo.ts';

/**
 * The payments behind recently viewed cashier pages, for page views only: a customer reloading,
 * a widget reopening, many tabs. What a cashier page shows of a payment changes only with its
 * status, and every status change is announced on the bus (`payment:<id>`, across processes on
 * PostgreSQL), which evicts the entry. Entries also age out after `ttlMs`, in case an announcement
 * is lost (a LISTEN connection that dropped). Steps that act — choosing a channel, QR codes,
 * returns, status reads — always read the database.
 */
export interface PaymentPageCache {
  get(token: string): Promise<PaymentRow | undefined>;
}

export function createPaymentPageCache(
  bus: StatusBus,
  load: (token: string) => Promise<PaymentRow | undefined>,
  options: { ttlMs?: number; max?: number } = {},
): PaymentPageCache {
  const ttlMs = options.ttlMs ?? 1000;
  const max = options.max ?? 10_000;
  const byToken = new Map<string, { payment: PaymentRow; at: number }>();
  const tokenOf = new Map<string, string>();
  // Bumped by every announcement: a read that overlapped one may hold the old row and is not kept.
  let evictions = 0;

  // For the life of the bus: closing it at shutdown removes this listener.
  bus.subscribePrefix('payment:', (topic) => {
    evictions++;
    const token = tokenOf.get(topic.slice('payment:'.length));
    if (token !== undefined) drop(token);
  });

  function drop(token: string): void {
    const entry = byToken.get(token);
    if (!entry) return;
    byToken.delete(token);
    tokenOf.delete(entry.payment.id);
  }

  return {
    async get(token) {
      const hit = byToken.get(token);
      if (hit && Date.now() - hit.at < ttlMs) return hit.payment;
      const before = evictions;
      const at = Date.now();
      const payment = await load(token);
      if (!payment) {
        drop(token);
        return undefined;
      }
      if (evictions === before) {
        drop(token);
        // Oldest first out: a Map iterates in insertion order.
        if (byToken.size >= max) drop(byToken.keys().next().value!);
        byToken.set(token, { payment, at });
        tokenOf.set(payment.id, token);
      }
      return payment;
    },
  };
}
