/**
 * Deliveries written by a transaction of this process go straight to this process's webhook
 * worker: they are inserted already leased to it (locked_until_ms, as a claim would set it),
 * and once the transaction commits the worker gets their ids in memory. That saves the claim
 * (an UPDATE and its commit) and a wake-up on every event of the hot path, and nothing of the
 * outbox's guarantee: the row is in the event's transaction, and if this process dies before
 * delivering, the lease runs out and any worker claims it, same webhook-id.
 */
import type { Knex } from 'knex';
import { commitHooksOf, type Sql } from '../sql.ts';

export interface DeliveryTaker {
  /** The lease to write on new deliveries, or undefined when the worker takes no more now (stopping, backlog). */
  leaseUntil(): number | undefined;
  /** Deliveries committed with that lease. */
  take(ids: string[], leaseUntil: number): void;
}

const takers = new WeakMap<Knex, DeliveryTaker>();
/** Transactions that wrote deliveries nobody here took: other workers must be woken for them. */
const unleased = new WeakSet<object>();

export function registerDeliveryTaker(db: Knex, taker: DeliveryTaker): () => void {
  takers.set(db, taker);
  return () => {
    if (takers.get(db) === taker) takers.delete(db);
  };
}

/** The lease for deliveries about to be inserted in `trx`, handed to the worker on commit; undefined: leave them to a claim. */
export function leaseForNewDeliveries(trx: Knex | Knex.Transaction | Sql, ids: () => string[]): number | undefined {
  const hooks = commitHooksOf(trx);
  const taker = hooks && takers.get(hooks.owner);
  const lease = taker?.leaseUntil();
  if (!hooks || !taker || lease === undefined) {
    unleased.add(trx);
    return undefined;
  }
  hooks.onCommit(() => taker.take(ids(), lease));
  return lease;
}

/** Whether `trx` wrote deliveries that a worker has to claim (so it must be woken). */
export function deliveriesNeedClaim(trx: object): boolean {
  return unleased.has(trx);
}
