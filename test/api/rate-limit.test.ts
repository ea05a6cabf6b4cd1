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
