import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';

let g: TestGateway;
beforeAll(async () => {
  g = await startTestGateway({ workers: false, apiRateLimit: 5 });
});
afterAll(async () => {
  await g?.close();
});

describe('API rate limit', () => {
  it('answers 429 with the error object past the per-key limit, per key', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, () => g.api('GET', '/v1/payments')));
    const limited = results.filter((r) => r.status === 429);
    expect(results.filter((r) => r.status === 200).length).toBe(5);
    expect(limited.length).toBe(7);
    expect(limited[0].body.error).toMatchObject({ type: 'invalid_request_error', code: 'rate_limit' });
    // Another key (live mode of the same app) has its own budget.
    const live = await fetch(`${g.url}/v1/payments`, { headers: { authorization: `Bearer ${g.app.live_secret_key}` } });
    expect(live.status).toBe(200);
  });
});

describe('cashier rate limit', () => {
  it('limits the steps that reach a channel per IP, not page views', async () => {
    const { startTestGateway: start } = await import('../support/gateway.ts');
    const h = await start({ workers: false });
    try {
      // The test gateway's cashier limit is effectively off; exercise the limiter itself.
      const { cashierRateLimit } = await import('../../server/http/rate-limit.ts');
      const express = (await import('express')).default;
      const app = express();
      app.use('/pay', (await import('../../server/checkout/routes.ts')).createCheckoutRoutes(h.deps, cashierRateLimit(3)));
      const server = app.listen(0);
      await new Promise((r) => server.once('listening', r));
      const base = `http://127.0.0.1:${(server.address() as any).port}`;
      const p = (await h.api('POST', '/v1/payments', { amount: 100, subject: 'x', out_trade_no: `rl_${Date.now()}` })).body;
      const path = new URL(p.checkout_url).pathname;
      const views = await Promise.all(Array.from({ length: 6 }, () => fetch(`${base}${path}/status`)));
      expect(views.every((v) => v.status === 200)).toBe(true);
      // The return step queries the channel; it is the limited kind (this bare app renders no views, so the first three fail to render).
      const steps = [];
      for (let i = 0; i < 5; i++) steps.push((await fetch(`${base}${path}/return`, { redirect: 'manual' })).status);
      expect(steps.filter((s) => s === 429)).toHaveLength(2);
      server.close();
    } finally {
      await h.close();
    }
  });
});
