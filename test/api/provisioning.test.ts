import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';

// A new app's first test payments each need the simulator credentials that the first of them
// provisions: however many arrive at once, and at however many gateway processes, one config
// row and one simulator merchant come out of it, and every payment goes through with them.
const BURST = 12;

async function burstOfFirstPayments(gateways: TestGateway[], channel: 'alipay_qr' | 'wechat_native'): Promise<void> {
  const [first] = gateways;
  const payments = await Promise.all(
    Array.from({ length: BURST }, async (_, i) => {
      const res = await first.api('POST', '/v1/payments', { amount: 100 + i, subject: 'First', out_trade_no: `first_${channel}_${i}` });
      expect(res.status).toBe(200);
      return res.body.id as string;
    }),
  );
  const results = await Promise.all(
    payments.map((id, i) => gateways[i % gateways.length].api('POST', `/v1/test_helpers/payments/${id}/simulate`, { channel })),
  );
  expect(results.map((r) => [r.status, r.body.status ?? r.body.error?.code])).toEqual(payments.map(() => [200, 'succeeded']));
}

async function provisioned(g: TestGateway, provider: 'alipay' | 'wechatpay') {
  const configs = await g.deps.db('channel_configs').where({ app_id: g.app.app_id, provider, livemode: false });
  // The WeChat Pay simulator keeps further rows per merchant that map its AppIDs to it.
  const merchants = await g.deps.db('sandbox_merchants').where({ provider }).whereNot('merchant_id', 'like', 'appid:%');
  return { configs: configs.length, generated: configs.map((c) => Boolean(c.generated)), merchants: merchants.length };
}

describe('provisioning simulator credentials on a new app', () => {
  let g: TestGateway;
  beforeAll(async () => {
    g = await startTestGateway({ workers: false });
  });
  afterAll(async () => {
    await g?.close();
  });

  it('many concurrent first Alipay payments share one provisioned config and merchant', async () => {
    await burstOfFirstPayments([g], 'alipay_qr');
    expect(await provisioned(g, 'alipay')).toEqual({ configs: 1, generated: [true], merchants: 1 });
  });

  it('many concurrent first WeChat Pay payments share one provisioned config and merchant', async () => {
    await burstOfFirstPayments([g], 'wechat_native');
    expect(await provisioned(g, 'wechatpay')).toEqual({ configs: 1, generated: [true], merchants: 1 });
    // One merchant, indexed by its two AppIDs (the 公众号 one and the mobile app's).
    expect(await g.deps.db('sandbox_merchants').where({ provider: 'wechatpay' }).whereLike('merchant_id', 'appid:%')).toHaveLength(2);
  });
});

// Two processes racing: each provisions at most once, the loser's merchant is rolled back with
// its config insert, and it pays with the winner's keys.
describe.skipIf(!pgUrl)('provisioning across two gateway instances on PostgreSQL', () => {
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

  it('first Alipay payments spread over both instances share one config and merchant', async () => {
    await burstOfFirstPayments([a, b], 'alipay_qr');
    expect(await provisioned(a, 'alipay')).toEqual({ configs: 1, generated: [true], merchants: 1 });
  });

  it('first WeChat Pay payments spread over both instances share one config and merchant', async () => {
    await burstOfFirstPayments([a, b], 'wechat_native');
    expect(await provisioned(a, 'wechatpay')).toEqual({ configs: 1, generated: [true], merchants: 1 });
  });
});
