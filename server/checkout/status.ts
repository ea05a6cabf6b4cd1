import type { Request, Response } from 'express';
import type { Deps } from '../deps.ts';
import { findPaymentById, listAttempts, type AttemptRow, type PaymentRow } from '../payments/repo.ts';
import { attemptStateOf, merchantReturnUrl, stateOf, watchAttempt, WATCHED_QUERY_MS } from './service.ts';

const HEARTBEAT_MS = 15_000;

/**
 * What the cashier's status channel says: the cashier state and, once paid, where to go on; with
 * a watched attempt (?attempt=), how that attempt stands, so a QR page learns its code is dead.
 */
export function statusBody(p: PaymentRow, attempt?: AttemptRow) {
  const status = stateOf(p);
  const body = { status, payment_id: p.id, return_url: status === 'succeeded' ? merchantReturnUrl(p) ?? null : null };
  return attempt ? { ...body, attempt_status: attemptStateOf(attempt) } : body;
}

/** The stream ends at a final state of the payment, or of the watched attempt. */
const isFinal = (body: ReturnType<typeof statusBody>) => body.status !== 'open' || ('attempt_status' in body && body.attempt_status !== 'pending');

/**
 * Server-Sent Events for pages that wait on the channel (QR codes have no return_url): the first
 * event is the current state, then one per change until a final state. The bus carries changes
 * from any process. While the stream is open a watched attempt is queried every few seconds.
 */
export function streamStatus(deps: Deps, req: Request, res: Response, payment: PaymentRow, attempt?: AttemptRow): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  });
  let done = false;
  const read = async () => {
    const p = await findPaymentById(deps.db, payment.id);
    const a = attempt && (await listAttempts(deps.db, payment.id)).find((x) => x.id === attempt.id);
    if (p && !done) send(statusBody(p, a || undefined));
  };
  const send = (body: ReturnType<typeof statusBody>) => {
    res.write(`event: status\ndata: ${JSON.stringify(body)}\n\n`);
    if (isFinal(body)) finish();
  };
  const unsubscribe = deps.bus.subscribe(`payment:${payment.id}`, () => {
    read().catch(() => undefined);
  });
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  const watch = attempt ? setInterval(() => watchAttempt(deps, attempt).catch(() => undefined), WATCHED_QUERY_MS) : undefined;
  watch?.unref();
  if (attempt) watchAttempt(deps, attempt).catch(() => undefined);
  function finish() {
    if (done) return;
    done = true;
    clearInterval(heartbeat);
    clearInterval(watch);
    unsubscribe();
    res.end();
  }
  req.on('close', finish);
  // Read after subscribing, so a change between the two is not missed.
  read().catch(finish);
}
