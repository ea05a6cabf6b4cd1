import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';

// Several stateless gateway processes on one PostgreSQL: status pushes cross them by LISTEN/NOTIFY.
describe.skipIf(!pgUrl)('two gateway instances on PostgreSQL', () => {
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(async () => {
    a = await startTestGateway({ workers: false });
    b = await startTestGateway({ workers: false, sameDatabaseAs: a });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('a notify accepted by one instance reaches a cashier served by the other', async () => {
    const p = (await a.api('POST', '/v1/payments', { amount: 880, subject: 'Two', out_trade_no: `two_${Date.now()}` })).body;
    const onB = p.checkout_url.replace(a.url, b.url);
    const res = await fetch(`${onB}/events`);
    const reader = res.body!.getReader();
    let text = '';
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += Buffer.from(value).toString();
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    expect(text).toContain('"status":"open"');
    // B's page view is cached now; A's change has to evict it.
    expect(await (await fetch(onB)).text()).toContain('name="form_token"');
    const sim = await a.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_qr' });
    expect(sim.body.status).toBe('succeeded');
    await reading;
    expect(text).toContain('"status":"succeeded"');
    expect(await (await fetch(onB)).text()).toContain('data-result="succeeded"');
  });
});
