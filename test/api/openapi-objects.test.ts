import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { OPERATIONS } from '../../server/openapi/operations.ts';
import { errorObjectSchema } from '../../server/http/errors.ts';
import { EVENT_SCHEMAS } from '../../server/events/schema.ts';
import { wechatpaySandbox } from '../../server/sandbox/wechatpay/index.ts';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { beijingDay, signedAgreement } from '../support/subscriptions.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { sandboxPayerOpenid } from '../../server/sandbox/wechatpay/index.ts';

/**
 * The object schemas the document is built from, checked against what the API really answers:
 * a field the API adds or drops without its schema fails here (the schemas are strict).
 */

const responseOf = (operationId: string): z.ZodType => {
  const op = OPERATIONS.find((o) => o.operationId === operationId);
  if (!op) throw new Error(`no operation ${operationId}`);
  return op.response;
};
const seen = new Set<string>();

/** Calls the API and parses the answer with the operation's documented response schema. */
async function call(operationId: string, method: string, path: string, body?: unknown) {
  const res = await g.api(method, path, body);
  expect(res.status, `${operationId}: ${JSON.stringify(res.body)}`).toBe(200);
  const parsed = responseOf(operationId).safeParse(res.body);
  expect(parsed.error?.issues, operationId).toBeUndefined();
  seen.add(operationId);
  return res.body;
}

let g: TestGateway;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await g?.close();
});

describe('response schemas match the API', () => {
  // Before the test that checks every operation was seen (tests of a file run in order).
  it('customers, their ledger, balance payments and coupons', async () => {
    const cus = await call('createCustomer', 'POST', '/v1/customers', { out_user_id: 'schema_user', name: 'Schema', email: 'schema@example.com', metadata: { k: 'v' } });
    await call('retrieveCustomer', 'GET', `/v1/customers/${cus.id}`);
    await call('updateCustomer', 'POST', `/v1/customers/${cus.id}`, { phone: '+86 138 0000 0000' });
    await call('listCustomers', 'GET', '/v1/customers?limit=1');
    await call('createBalanceTransaction', 'POST', `/v1/customers/${cus.id}/balance_transactions`, { amount: 500, description: 'Schema credit' });
    const balancePaid = await call('createPayment', 'POST', '/v1/payments', { amount: 100, subject: 'Balance', out_trade_no: 'schema_balance', customer: cus.id, channel: 'balance' });
    expect(balancePaid.status).toBe('succeeded');
    await call('createRefund', 'POST', `/v1/payments/${balancePaid.id}/refunds`, { amount: 50 });
    await call('listBalanceTransactions', 'GET', `/v1/customers/${cus.id}/balance_transactions`);
    const coupon = await call('createCoupon', 'POST', '/v1/coupons', { code: 'SCHEMA10', percent_off: 10, currency: 'CNY', max_discount: 100 });
    await call('retrieveCoupon', 'GET', `/v1/coupons/${coupon.id}`);
    await call('updateCoupon', 'POST', `/v1/coupons/${coupon.id}`, { max_redemptions: 10 });
    await call('listCoupons', 'GET', '/v1/coupons');
    const discounted = await call('createPayment', 'POST', '/v1/payments', { amount: 1000, subject: 'Coupon', out_trade_no: 'schema_coupon', coupon: 'schema10', customer: cus.id });
    expect(discounted).toMatchObject({ amount: 900, amount_discount: 100, coupon: coupon.id, customer: cus.id });
    const mandate = await call('createAgreement', 'POST', '/v1/agreements', {
      customer: cus.id, channel: 'alipay', period_rule: { period_type: 'MONTH', period: 1, execute_time: '2030-01-15' }, single_amount_max: 3000,
    });
    expect(mandate.next_action).not.toBeNull();
    await call('retrieveAgreement', 'GET', `/v1/agreements/${mandate.id}`);
    await call('listAgreements', 'GET', `/v1/agreements?customer=${cus.id}`);
    expect((await call('terminateAgreement', 'POST', `/v1/agreements/${mandate.id}/terminate`)).status).toBe('terminated');
    // A signed agreement, a subscription on it, a year of renewals on its test clock, and a cancel.
    const { agreement } = await signedAgreement(g, { period_type: 'MONTH', period: 1, execute_time: beijingDay(3).replace(/-(29|30|31)$/, '-28') });
    const sub = await call('createSubscription', 'POST', '/v1/subscriptions', { agreement: agreement.id, amount: 1500, subject: 'Schema plan', interval: 'month', metadata: { k: 'v' } });
    const advanced = await call('advanceSubscriptionClock', 'POST', `/v1/test_helpers/subscriptions/${sub.id}/advance`, { to: sub.current_period_end + 86400 });
    expect(advanced.status).toBe('active');
    await call('retrieveSubscription', 'GET', `/v1/subscriptions/${sub.id}`);
    await call('listSubscriptions', 'GET', `/v1/subscriptions?agreement=${agreement.id}`);
    const charged = await call('listPayments', 'GET', `/v1/payments?subscription=${sub.id}`);
    expect(charged.data[0].subscription).toBe(sub.id);
    expect((await call('cancelSubscription', 'POST', `/v1/subscriptions/${sub.id}/cancel`, { at_period_end: false })).status).toBe('canceled');
    const gone = await call('createCustomer', 'POST', '/v1/customers', {});
    await call('deleteCustomer', 'DELETE', `/v1/customers/${gone.id}`);
  });

  it('transfers and red packets', async () => {
    const cred: any = await getCredentials(g.deps, g.app.app_id, 'wechatpay', false);
    const openid = wechatpaySandbox.payerId!({ db: g.deps.db, publicUrl: g.deps.config.publicUrl, masterKey: g.deps.config.masterKeyBytes, logger: g.deps.logger }, cred.appid);
    const paid = await call('createTransfer', 'POST', '/v1/transfers', {
      channel: 'wechatpay', amount: 1000, out_transfer_no: 'schema_tr_1', recipient: { type: 'wechat_openid', account: openid, name: '张三' }, metadata: { k: 'v' },
    });
    expect(paid.status).toBe('awaiting_recipient');
    await call('retrieveTransfer', 'GET', `/v1/transfers/${paid.id}`);
    await call('listTransfers', 'GET', '/v1/transfers?limit=2');
    const waiting = await call('createTransfer', 'POST', '/v1/transfers', { channel: 'wechatpay', amount: 500, out_transfer_no: 'schema_tr_2', recipient: { type: 'wechat_openid', account: openid } });
    expect(waiting.next_action.type).toBe('wechat_transfer_confirm');
    expect((await call('simulateTransferRecipient', 'POST', `/v1/test_helpers/transfers/${waiting.id}/simulate`, { outcome: 'confirm' })).status).toBe('succeeded');
    const third = await call('createTransfer', 'POST', '/v1/transfers', { channel: 'wechatpay', amount: 500, out_transfer_no: 'schema_tr_3', recipient: { type: 'wechat_openid', account: openid } });
    expect((await call('cancelTransfer', 'POST', `/v1/transfers/${third.id}/cancel`)).status).toBe('canceled');
    const rp = await call('createRedPacket', 'POST', '/v1/red_packets', {
      channel: 'wechatpay', amount: 888, out_red_packet_no: 'schema_rp_1', recipient: { type: 'wechat_openid', account: openid },
      sender_name: 'Schema', wishing: '恭喜发财', act_name: '活动', remark: '备注', scene_id: 'PRODUCT_1',
    });
    await call('retrieveRedPacket', 'GET', `/v1/red_packets/${rp.id}`);
    await call('listRedPackets', 'GET', '/v1/red_packets');
    expect((await call('simulateRedPacketRecipient', 'POST', `/v1/test_helpers/red_packets/${rp.id}/simulate`, { outcome: 'open' })).status).toBe('received');
  });

  it('payments, refunds, events, webhook endpoints and deliveries', async () => {
    const p = await call('createPayment', 'POST', '/v1/payments', { amount: 1200, subject: 'Schema', out_trade_no: 'schema_1', metadata: { k: 'v' } });
    await call('createPayment', 'POST', '/v1/payments', { amount: 300, subject: 'QR', out_trade_no: 'schema_2', channel: 'alipay_qr', description: 'd', return_url: 'https://shop.example/r' });
    await call('retrievePayment', 'GET', `/v1/payments/${p.id}`);
    const paid = await call('simulatePayment', 'POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc' });
    expect(paid.status).toBe('succeeded');
    const list = await call('listPayments', 'GET', '/v1/payments?limit=1');
    expect(list.has_more).toBe(true);
    const refund = await call('createRefund', 'POST', `/v1/payments/${p.id}/refunds`, { amount: 200, reason: 'schema' });
    await call('retrieveRefund', 'GET', `/v1/refunds/${refund.id}`);
    const toClose = await call('createPayment', 'POST', '/v1/payments', { amount: 100, subject: 'Close', out_trade_no: 'schema_3' });
    await call('simulatePayment', 'POST', `/v1/test_helpers/payments/${toClose.id}/simulate`, { channel: 'alipay_pc', outcome: 'fail' });
    // Each next_action shape the simulators give parses strictly: redirect, QR, JSAPI, the app ones.
    const wechat = (await getCredentials(g.deps, g.app.app_id, 'wechatpay', false)) as { appid: string };
    const openid = sandboxPayerOpenid({ masterKey: g.deps.config.masterKeyBytes }, wechat.appid);
    for (const channel of ['wechat_native', 'wechat_jsapi', 'alipay_wap', 'alipay_app', 'wechat_app']) {
      const body = channel === 'wechat_jsapi' ? { channel, openid } : { channel };
      const confirmed = await call('confirmPayment', 'POST', `/v1/payments/${toClose.id}/confirm`, body);
      expect(confirmed.next_action, channel).not.toBeNull();
    }
    await call('closePayment', 'POST', `/v1/payments/${toClose.id}/close`);


    const ep = await call('createWebhookEndpoint', 'POST', '/v1/webhook_endpoints', { url: receiver.url });
    await call('retrieveWebhookEndpoint', 'GET', `/v1/webhook_endpoints/${ep.id}`);
    await call('updateWebhookEndpoint', 'POST', `/v1/webhook_endpoints/${ep.id}`, { enabled_events: ['payment.succeeded', 'test.webhook'] });
    await call('listWebhookEndpoints', 'GET', '/v1/webhook_endpoints');
    await call('rotateWebhookEndpointSecret', 'POST', `/v1/webhook_endpoints/${ep.id}/rotate_secret`, { expires_in: 60 });
    const test = await call('sendTestWebhook', 'POST', `/v1/webhook_endpoints/${ep.id}/test`);
    await call('listWebhookEndpointDeliveries', 'GET', `/v1/webhook_endpoints/${ep.id}/deliveries`);
    await call('listEventDeliveries', 'GET', `/v1/events/${test.id}/deliveries`);
    await call('resendEvent', 'POST', `/v1/events/${test.id}/resend`, { webhook_endpoint: ep.id });

    const events = await call('listEvents', 'GET', '/v1/events?limit=100');
    const types = new Set<string>(events.data.map((e: any) => e.type));
    // Each event parses with its own type's schema too, not only with the union.
    for (const e of events.data) expect(EVENT_SCHEMAS[e.type as keyof typeof EVENT_SCHEMAS].safeParse(e).error?.issues, e.type).toBeUndefined();
    expect([...types].sort()).toEqual(expect.arrayContaining(['payment.attempt_failed', 'payment.closed', 'payment.succeeded', 'refund.succeeded', 'test.webhook']));
    await call('retrieveEvent', 'GET', `/v1/events/${events.data[0].id}`);
    await call('deleteWebhookEndpoint', 'DELETE', `/v1/webhook_endpoints/${ep.id}`);

    // Keys: a second key is made, rolled and its successor revoked, so the key these calls use stays.
    const extra = await call('createApiKey', 'POST', '/v1/api_keys', {});
    await call('retrieveApiKey', 'GET', `/v1/api_keys/${extra.id}`);
    const rolled = await call('rollApiKey', 'POST', `/v1/api_keys/${extra.id}/roll`, { expires_in: 60 });
    await call('revokeApiKey', 'POST', `/v1/api_keys/${rolled.id}/revoke`);
    await call('listApiKeys', 'GET', '/v1/api_keys');

    const doc = await fetch(`${g.url}/v1/openapi.json`).then((r) => r.json());
    expect(responseOf('getOpenApiDocument').safeParse(doc).success).toBe(true);
    seen.add('getOpenApiDocument');
    // Every routed operation has had a real answer parsed.
    expect(OPERATIONS.map((o) => o.operationId).filter((id) => !seen.has(id))).toEqual([]);
  });

  it('errors, by status', async () => {
    const cases: Array<[number, () => Promise<{ status: number; body: any }>]> = [
      [400, () => g.api('POST', '/v1/payments', { amount: -1, subject: 'x', out_trade_no: 'bad' })],
      [401, async () => {
        const r = await fetch(`${g.url}/v1/payments`);
        return { status: r.status, body: await r.json() };
      }],
      [404, () => g.api('GET', '/v1/payments/pay_nope')],
      [404, () => g.api('GET', '/v1/nothing_here')],
    ];
    for (const [status, run] of cases) {
      const res = await run();
      expect(res.status).toBe(status);
      expect(errorObjectSchema.safeParse(res.body).error?.issues).toBeUndefined();
    }
  });
});
