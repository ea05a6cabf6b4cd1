/**
 * UnionPay through the gateway's API: the direct API's post_form next_action, the close of an
 * order UnionPay cannot close (the attempt stays 'closing' and is queried until payTimeout), and
 * the credentials upload naming the broken field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startPaymentWorker, type PaymentWorker } from '../../server/payments/worker.ts';
import { setChannelConfig } from '../../server/apps/channel-configs.ts';
import { ChannelConfigError } from '../../server/errors.ts';

let g: TestGateway;
let worker: PaymentWorker;
let seq = 0;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  worker = startPaymentWorker(g.deps, { background: false });
});
afterAll(async () => {
  await worker?.stop();
  await g?.close();
});

const create = (extra: Record<string, unknown> = {}) =>
  g.api('POST', '/v1/payments', { amount: 1234, subject: 'UnionPay order', out_trade_no: `upd_${Date.now()}_${++seq}`, ...extra });

describe('unionpay through the API', () => {
  it('create with channel: next_action post_form to frontTransReq.do; the txnTime is stored on the attempt', async () => {
    const p = (await create({ channel: 'unionpay_wap' })).body;
    expect(p.next_action.type).toBe('post_form');
    expect(p.next_action.post_form.url).toBe(`${g.url}/sandbox/unionpay/gateway/api/frontTransReq.do`);
    const fields = p.next_action.post_form.fields;
    expect(fields).toMatchObject({ version: '5.1.0', channelType: '08', txnAmt: '1234', currencyCode: '156', signMethod: '01' });
    const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id }).first();
    expect(fields.orderId).toBe(attempt.channel_order_no);
    expect(attempt.channel_order_no).toMatch(/^cs[A-Za-z0-9]{30}$/);
    expect(attempt.channel_ref).toBe(fields.txnTime);
  });

  it('close: the payment closes; the attempt stays closing and is queried until payTimeout; a late payment is found', async () => {
    const p = (await create({ channel: 'unionpay_pc' })).body;
    const closed = await g.api('POST', `/v1/payments/${p.id}/close`);
    expect(closed.body.status).toBe('closed');
    const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id }).first();
    expect(attempt.status).toBe('closing');
    // The customer pays anyway, before payTimeout: the query finds it and the money goes back.
    const { unionpaySandbox } = await import('../../server/sandbox/unionpay/index.ts');
    await unionpaySandbox.act(
      { db: g.deps.db, publicUrl: g.deps.config.publicUrl, masterKey: g.deps.config.masterKeyBytes, logger: g.deps.logger },
      { appId: '', orderNo: attempt.channel_order_no, outcome: 'pay', notify: 'drop', action: JSON.parse(attempt.action) },
    );
    await g.deps.db('payment_attempts').where({ id: attempt.id }).update({ next_query_at_ms: Date.now() - 1 });
    await worker.runOnce();
    expect((await g.deps.db('payment_attempts').where({ id: attempt.id }).first()).status).toBe('succeeded');
    const refunds = await g.deps.db('refunds').where({ payment_id: p.id });
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({ amount: 1234, reason: 'duplicate_payment' });
  });

  it('channel set: unknown keys and broken fields are refused naming them', async () => {
    const set = (raw: unknown) => setChannelConfig(g.deps, g.app.app_id, 'unionpay', true, raw);
    await expect(set({ mer_id: '777000000000001', sign_cert: 'x', sign_key: 'x', root_cert: 'x', middle_cert: 'x', merchant_id: 'x' })).rejects.toThrow(/unknown key "merchant_id"/);
    await expect(set({ mer_id: '777', sign_cert: 'x', sign_key: 'x', root_cert: 'x', middle_cert: 'x' })).rejects.toThrow(ChannelConfigError);
    const pem = '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----';
    await expect(set({ mer_id: '777000000000001', sign_cert: pem, sign_key: pem, root_cert: pem, middle_cert: pem })).rejects.toThrow(/sign_cert must be an X.509/);
    await expect(set({ mer_id: '777000000000001', sign_cert: pem, sign_key: pem, root_cert: 'x', middle_cert: pem })).rejects.toThrow(/root_cert must be a PEM/);
  });
});
