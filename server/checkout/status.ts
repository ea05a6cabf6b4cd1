import type { Request, Response } from 'express';
import type { Deps } from '../deps.ts';
import { findPaymentById, type PaymentRow } from '../payments/repo.ts';
import { merchantReturnUrl, stateOf } from './service.ts';

const HEARTBEAT_MS = 15_000;

/** What the cashier's status channel says: the cashier state and, once paid, where to go on. */
export function statusBody(p: PaymentRow) {
  const status = stateOf(p);
  return { status, payment_id: p.id, return_url: status === 'succeeded' ? merchantReturnUrl(p) ?? null : null };
}

/**
 * Server-Sent Events for QR flows, which have no return_url: the first event is the current
 * state, then one per change until a final state. The bus carries changes from any process.
 */
export function streamStatus(deps: Deps, req: Request, res: Response, payment: PaymentRow): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  });
  let done = false;
  const send = (p: PaymentRow) => {
    const body = statusBody(p);
    res.write(`event: status\ndata: ${JSON.stringify(body)}\n\n`);
    if (body.status !== 'open') finish();
  };
  const unsubscribe = deps.bus.subscribe(`payment:${payment.id}`, () => {
    findPaymentById(deps.db, payment.id).then((p) => p && !done && send(p), () => undefined);
  });
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  function finish() {
    if (done) return;
    done = true;
    clearInterval(heartbeat);
    unsubscribe();
    res.end();
  }
  req.on('close', finish);
  // Read after subscribing, so a change between the two is not missed.
  findPaymentById(deps.db, payment.id).then((p) => p && !done && send(p), finish);
}
