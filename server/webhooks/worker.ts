import type { Deps } from '../deps.ts';
import { bool } from '../db.ts';
import { nowSeconds, unseal } from '../crypto.ts';
import { eventFromRow, insertEvent } from '../events/repo.ts';
import { webhookHeaders } from './sign.ts';
import { endpointFromRow, policyOf, WEBHOOKS_TOPIC } from './service.ts';
import { createWebhookClient, type WebhookClient } from './client.ts';
import * as repo from './repo.ts';
import { transaction } from '../sql.ts';
import { registerDeliveryTaker } from './handoff.ts';

export { WEBHOOKS_TOPIC };

/** Wait after failed attempt n (index n-1): DESIGN §2, about three days in all. */
export const RETRY_SCHEDULE_MS = [
  5_000, 5 * 60_000, 30 * 60_000, 2 * 3_600_000, 5 * 3_600_000, 10 * 3_600_000, 14 * 3_600_000, 20 * 3_600_000, 24 * 3_600_000,
];
/** The first attempt plus one per scheduled retry. */
export const MAX_ATTEMPTS = RETRY_SCHEDULE_MS.length + 1;

/** A delivery that has not answered within this long counts as failed (connect, headers and excerpt together). */
export const DELIVERY_TIMEOUT_MS = 15_000;
/**
 * A claim lasts twice the request timeout, so only a dead (or badly stalled) worker loses it;
 * after a crash its deliveries are picked up again within this long, same webhook-id.
 */
export const LEASE_MS = 30_000;
/** An endpoint that has failed every delivery for this long is disabled and the merchant told. */
export const DISABLE_AFTER_FAILING_S = 3 * 86_400;
const MAX_RETRY_AFTER_MS = 24 * 3_600_000;
/**
 * Deliveries handed over by this process's transactions and not started yet, at most: beyond
 * it new ones are left unleased for a claim, so a backlog cannot outlive the leases it holds.
 */
const MAX_HANDED = 2000;
const USER_AGENT = 'Checkstand-Webhooks/1';

export interface WebhookWorkerOptions {
  /** How often to look for due deliveries without being woken (default 1000 ms). */
  pollMs?: number;
  /** Deliveries in flight at once (default 8). */
  concurrency?: number;
  /** The HTTP client (default: createWebhookClient(), which checks every address it connects to). */
  client?: WebhookClient;
  /** Request timeout (default DELIVERY_TIMEOUT_MS); tests shorten it. */
  timeoutMs?: number;
  /** Scheduling clock in ms (due checks, leases, retry times). Signatures always use the wall clock: receivers compare with theirs. */
  now?: () => number;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
  /** false: no polling and no bus subscription, only runOnce() and kick() deliver (tests). Default true. */
  background?: boolean;
}

export interface WebhookWorker {
  /** Stops polling and waits for the deliveries in flight. */
  stop(): Promise<void>;
  /** Looks for due deliveries now instead of at the next poll. */
  kick(): void;
  /** Delivers everything due at the time of the call and resolves with the number of deliveries handled. */
  runOnce(): Promise<number>;
}

type Job = repo.DeliveryJob & { leaseUntil: number };

interface AttemptResult {
  statusCode: number | null;
  latencyMs: number;
  excerpt: string | null;
  error: string | null;
  retryAfterMs: number | null;
}

/** Starts the delivery worker: polls, wakes on the 'webhooks' bus topic, keeps up to `concurrency` requests in flight. */
export function startWebhookWorker(deps: Deps, opts: WebhookWorkerOptions = {}): WebhookWorker {
  const pollMs = opts.pollMs ?? 1000;
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 8));
  const client = opts.client ?? createWebhookClient();
  const timeoutMs = opts.timeoutMs ?? DELIVERY_TIMEOUT_MS;
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const background = opts.background ?? true;

  const inFlight = new Set<Promise<void>>();
  let stopped = false;
  let pumping: Promise<void> | null = null;
  let pumpAgain = false;
  // Whether the queue may hold due work that no claim has seen yet: set by a wake-up (bus, poll,
  // kick) and by a claim that came back full. A finished delivery claims again only then, so a
  // steady trickle of events costs one claim each, not one per finished delivery as well.
  let dirty = true;

  async function claim(dueBefore: number, limit: number): Promise<Job[]> {
    const t = now();
    const leaseUntil = t + LEASE_MS;
    const ids = await repo.claimDueDeliveries(deps.db, { dueBefore, now: t, leaseUntil, limit });
    const jobs = await repo.loadDeliveryJobs(deps.db, ids);
    return jobs.map((j) => ({ ...j, leaseUntil }));
  }

  // Deliveries this process's own transactions committed, leased to this worker already.
  const handed: Array<{ id: string; leaseUntil: number }> = [];

  async function takeHanded(limit: number): Promise<Job[]> {
    const batch = handed.splice(0, limit);
    const leaseOf = new Map(batch.map((h) => [h.id, h.leaseUntil]));
    const jobs = await repo.loadDeliveryJobs(deps.db, batch.map((h) => h.id));
    // Still ours: pending, and the lease the insert wrote (an expired one may have been claimed since).
    return jobs.filter((j) => j.status === 'pending' && j.leaseUntil === leaseOf.get(j.deliveryId) && j.leaseUntil > now()) as Job[];
  }

  function start(jobs: Job[]): void {
    for (const job of jobs) {
      const p = deliver(job).finally(() => {
        inFlight.delete(p);
        pump();
      });
      inFlight.add(p);
    }
  }

  // Fills free slots; a finished delivery calls pump() again, so a backlog drains at full
  // concurrency instead of one batch per poll.
  async function fillSlots(): Promise<void> {
    while (!stopped && handed.length > 0 && inFlight.size < concurrency) {
      start(await takeHanded(concurrency - inFlight.size));
    }
    while (!stopped && dirty) {
      const slots = concurrency - inFlight.size;
      if (slots <= 0) return;
      dirty = false;
      let jobs: Job[];
      try {
        jobs = await claim(now(), slots);
      } catch (err) {
        dirty = true;
        throw err;
      }
      start(jobs);
      if (jobs.length === slots) dirty = true;
    }
  }

  // A wake-up claims on the next turn of the event loop, not inside the publisher's call: the
  // notify that committed the event answers its channel first, and the wake-ups of one turn
  // (several notifies) share one claim.
  let wakeScheduled = false;
  function wake(): void {
    dirty = true;
    if (wakeScheduled) return;
    wakeScheduled = true;
    setImmediate(() => {
      wakeScheduled = false;
      pump();
    });
  }

  function pump(): void {
    if (stopped) return;
    if (pumping) {
      pumpAgain = true;
      return;
    }
    pumping = (async () => {
      do {
        pumpAgain = false;
        try {
          await fillSlots();
        } catch (err) {
          deps.logger.error('webhook worker could not claim deliveries', { err });
        }
      } while (pumpAgain && !stopped);
    })().finally(() => {
      pumping = null;
    });
  }

  async function deliver(job: Job): Promise<void> {
    try {
      await deliverWebhook(job);
    } catch (err) {
      // The lease runs out and another pass retries; the receiver may see it twice (at least once).
      deps.logger.error('webhook delivery could not be recorded', { delivery_id: job.deliveryId, event_id: job.event.id, endpoint_id: job.endpoint.id, err });
    }
  }

  async function deliverWebhook(job: Job): Promise<void> {
    if (job.endpoint.deleted || job.endpoint.status !== 'enabled') {
      await repo.completeDelivery(deps.db, job, { status: 'failed', attemptCount: job.attemptCount, lastStatusCode: null, now: now() });
      return;
    }
    const attemptedAtMs = now();
    const result = await sendOnce(job);
    const attempt = job.attemptCount + 1;
    const code = result.statusCode;
    const ok = code !== null && code >= 200 && code < 300;
    const gone = code === 410;
    const t = now();
    let status: 'delivered' | 'failed' | 'pending' = 'pending';
    let nextAttemptAtMs: number | undefined;
    if (ok) status = 'delivered';
    else if (gone || attempt >= MAX_ATTEMPTS) status = 'failed';
    else nextAttemptAtMs = t + nextRetryDelay(attempt, result.retryAfterMs, random);

    let disabled = false;
    let disabledReason = '';
    await transaction(deps.db, async (trx) => {
      await repo.insertAttempt(trx, {
        deliveryId: job.deliveryId,
        attemptedAtMs,
        statusCode: code,
        latencyMs: result.latencyMs,
        responseExcerpt: result.excerpt,
        error: result.error,
      });
      await repo.completeDelivery(trx, job, { status, attemptCount: attempt, lastStatusCode: code, nextAttemptAtMs, now: t });
      const nowSec = Math.floor(t / 1000);
      // A healthy endpoint that stays healthy needs no write.
      const failingSince = ok && job.endpoint.failingSince === null ? null : await repo.markEndpointHealth(trx, job.endpoint.id, ok, nowSec);
      // 410 Gone is the receiver saying "stop" (Standard Webhooks); three days of nothing but
      // failures is the retry schedule running out. Either way the app's other endpoints hear of
      // it through the event, written in the same transaction, and the console shows the reason.
      if (gone) disabledReason = 'The endpoint answered 410 Gone.';
      else if (!ok && failingSince !== null && nowSec - failingSince >= DISABLE_AFTER_FAILING_S) {
        disabledReason = `Every delivery has failed since ${new Date(failingSince * 1000).toISOString()} (three days).`;
      }
      if (disabledReason) {
        disabled = await repo.disableEndpoint(trx, job.endpoint.id, disabledReason);
        if (disabled) {
          const row = await repo.endpointRowById(trx, job.endpoint.id);
          await insertEvent(trx, { appId: job.appId, livemode: bool(job.event.livemode), type: 'webhook_endpoint.disabled', object: { ...endpointFromRow(row) } });
        }
      }
    });

    if (!ok) {
      deps.logger.warn('webhook delivery failed', {
        event_id: job.event.id,
        endpoint_id: job.endpoint.id,
        delivery_id: job.deliveryId,
        attempt,
        status: code,
        error: result.error,
        next_attempt_at: nextAttemptAtMs === undefined ? null : new Date(nextAttemptAtMs).toISOString(),
      });
    }
    if (disabled) {
      deps.logger.warn('webhook endpoint disabled', { endpoint_id: job.endpoint.id, app_id: job.appId, reason: disabledReason });
      deps.bus.publish(WEBHOOKS_TOPIC, job.endpoint.id).catch((err) => deps.logger.error('could not publish on the bus', { err }));
    }
  }

  async function sendOnce(job: Job): Promise<AttemptResult> {
    let secrets: string[];
    try {
      secrets = signingSecrets(deps, job);
    } catch {
      deps.logger.error('webhook secret does not unseal; was the master key changed?', { endpoint_id: job.endpoint.id });
      return { statusCode: null, latencyMs: 0, excerpt: null, error: 'The endpoint secret could not be decrypted.', retryAfterMs: null };
    }
    // Built once from the stored row, so every retry sends the same bytes.
    const body = JSON.stringify(eventFromRow(job.event));
    const headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      ...webhookHeaders({ id: job.event.id, timestamp: nowSeconds(), body, secrets }),
    };
    const started = performance.now();
    try {
      // Redirects are not followed: the answer to the signed request is what counts.
      const res = await client.post({ url: job.endpoint.url, headers, body, policy: policyOf(deps, { livemode: bool(job.event.livemode) }), timeoutMs });
      const latencyMs = Math.round(performance.now() - started);
      return { statusCode: res.statusCode, latencyMs, excerpt: res.excerpt, error: null, retryAfterMs: parseRetryAfter(res.retryAfter) };
    } catch (err) {
      return { statusCode: null, latencyMs: Math.round(performance.now() - started), excerpt: null, error: describeError(err), retryAfterMs: null };
    }
  }

  async function runOnce(): Promise<number> {
    // A retry is always scheduled after the cutoff, so one call never attempts a delivery twice.
    const cutoff = now();
    let handled = 0;
    for (;;) {
      const jobs = await claim(cutoff, concurrency);
      if (jobs.length === 0) return handled;
      await Promise.all(jobs.map(deliver));
      handled += jobs.length;
    }
  }

  // The pump runs on the next turn of the event loop: the committing notify answers its channel first.
  let handScheduled = false;
  function handOver(ids: string[], leaseUntil: number): void {
    for (const id of ids) handed.push({ id, leaseUntil });
    if (handScheduled) return;
    handScheduled = true;
    setImmediate(() => {
      handScheduled = false;
      pump();
    });
  }

  let timer: NodeJS.Timeout | undefined;
  let unsubscribe = () => {};
  let unregister = () => {};
  if (background) {
    unregister = registerDeliveryTaker(deps.db, {
      leaseUntil: () => (stopped || handed.length >= MAX_HANDED ? undefined : now() + LEASE_MS),
      take: handOver,
    });
    unsubscribe = deps.bus.subscribe(WEBHOOKS_TOPIC, wake);
    timer = setInterval(wake, pollMs);
    timer.unref();
    wake();
  }

  return {
    kick: wake,
    runOnce,
    async stop() {
      stopped = true;
      unregister();
      if (timer) clearInterval(timer);
      unsubscribe();
      if (pumping) await pumping;
      await Promise.allSettled([...inFlight]);
      // Handed over but not started: give the leases back so that the next worker need not wait them out.
      const left = handed.splice(0);
      for (const h of left) {
        await repo.releaseLease(deps.db, h.id, h.leaseUntil).catch((err) => deps.logger.warn('could not release a webhook delivery lease', { delivery_id: h.id, err }));
      }
      if (!opts.client) client.close();
    },
  };
}

/** The current secret, plus the previous one while a rotation's grace period lasts (both sealed with the endpoint id). */
function signingSecrets(deps: Deps, job: Job): string[] {
  const key = deps.config.masterKeyBytes;
  const secrets = [unseal(key, job.endpoint.secretSealed, job.endpoint.id)];
  const { previousSecretSealed, previousSecretExpiresAt } = job.endpoint;
  if (previousSecretSealed && previousSecretExpiresAt !== null && previousSecretExpiresAt > nowSeconds()) {
    secrets.push(unseal(key, previousSecretSealed, job.endpoint.id));
  }
  return secrets;
}

/** Delay before the retry that follows failed attempt n: the schedule ±10% jitter, or a longer Retry-After (capped at 24 h). */
export function nextRetryDelay(attempt: number, retryAfterMs: number | null, random: () => number = Math.random): number {
  const base = RETRY_SCHEDULE_MS[Math.min(attempt, RETRY_SCHEDULE_MS.length) - 1];
  const jittered = Math.round(base * (0.9 + 0.2 * random()));
  if (retryAfterMs === null) return jittered;
  return Math.max(jittered, Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3), in ms; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, wallNow: number = Date.now()): number | null {
  if (!value) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v), MAX_RETRY_AFTER_MS / 1000) * 1000;
  if (!/[a-z]/i.test(v)) return null; // Date.parse would take odd numerics such as "1.5"
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - wallNow);
}

function describeError(err: unknown): string {
  const e = err as { message?: string; code?: string } | undefined;
  const message = e?.message || e?.code || String(err);
  return message.slice(0, 500);
}
