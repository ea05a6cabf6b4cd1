/**
 * Alipay-only transfer cases and Alipay red packets through the API against the Alipay simulator
 * (certificate mode, provisioned in test mode): one out_transfer_no under 20 concurrent creates,
 * a refusal that gives a balance back, bad input, red packets received at once. Success, refusal,
 * the unknown answer and its query, and forged, mismatched or duplicate order.changed messages
 * are the money-out conformance suite's (test/conformance/money-out.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { newCustomer, topUp, expectLedgerConsistent } from '../support/accounts.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { sandboxFundPaidCount } from '../../server/sandbox/alipay/fund.ts';

let g: TestGateway;
let appId: string;
let seq = 0;
const no = (p: string) => `${p}_${Date.now().toString(36)}_${++seq}`;

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  const cred: any = await getCredentials(g.deps, g.app.app_id, 'alipay', false);
  appId = cred.appId;
});
afterAll(() => g?.close());

const sandboxDeps = () => ({ db: g.deps.db, publicUrl: g.deps.config.publicUrl, masterKey: g.deps.config.masterKeyBytes, logger: g.deps.logger });
const eventTypes = async (id: string) => (await g.deps.db('events').where({ object_id: id }).orderBy([{ column: 'created', order: 'asc' }, { column: 'id', order: 'asc' }])).map((e) => e.type);
const alipayTransfer = (body: Record<string, unknown> = {}) => g.api('POST', '/v1/transfers', {
  channel: 'alipay', amount: 1000, out_transfer_no: no('ali'), recipient: { type: 'alipay_user_id', account: '2088102146225135' }, description: '佣金', ...body,
});
const alipayPacket = (body: Record<string, unknown> = {}) => g.api('POST', '/v1/red_packets', {
  channel: 'alipay', amount: 666, out_red_packet_no: no('arp'), recipient: { type: 'alipay_user_id', account: '2088102146225136' },
  sender_name: 'Test Shop', wishing: '新年快乐', act_name: '新年活动', remark: '感谢支持', ...body,
});

describe('Alipay transfers', () => {
  it('20 concurrent creates with one out_transfer_no make one transfer, paid once', async () => {
    const out = no('race');
    const answers = await Promise.all(Array.from({ length: 20 }, () => alipayTransfer({ out_transfer_no: out, amount: 777 })));
    const ok = answers.filter((a) => a.status === 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const a of answers.filter((x) => x.status !== 200)) expect(a.body.error, JSON.stringify(a.body)).toMatchObject({ code: 'out_transfer_no_taken', param: 'out_transfer_no' });
    const rows = await g.deps.db('transfers').where({ out_transfer_no: out });
    expect(rows).toHaveLength(1);
    expect(new Set(ok.map((a) => a.body.id))).toEqual(new Set([rows[0].id]));
    expect(await sandboxFundPaidCount(sandboxDeps(), appId, rows[0].transfer_no)).toBe(1);
    expect(await eventTypes(rows[0].id)).toEqual(['transfer.succeeded']);
  });

  it('a refused balance-funded transfer fails with the sub_code and gives the balance back', async () => {
    const c = await newCustomer(g, { out_user_id: no('alipayee') });
    await topUp(g, c.id, 3000);
    const res = await alipayTransfer({ amount: 2000, customer: c.id, source: 'balance', recipient: { type: 'alipay_user_id', account: '2088999999999999' } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: 'failed', failure_code: 'PAYEE_NOT_EXIST' });
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(3000);
    expect(await eventTypes(res.body.id)).toEqual(['transfer.failed']);
    await expectLedgerConsistent(g.deps.db);
  });

  it('bad input is a 400 naming the parameter, and nothing is sent', async () => {
    for (const [body, param] of [
      [{ amount: 9 }, 'amount'],
      [{ recipient: { type: 'alipay_login_id', account: 'payee@example.com' } }, 'recipient.name'],
      [{ recipient: { type: 'alipay_user_id', account: '2088' } }, 'recipient.account'],
      [{ recipient: { type: 'wechat_openid', account: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' } }, 'recipient.type'],
    ] as const) {
      const before = Number((await g.deps.db('transfers').count({ n: '*' }))[0].n);
      const res = await alipayTransfer(body as Record<string, unknown>);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error.param).toBe(param);
      expect(Number((await g.deps.db('transfers').count({ n: '*' }))[0].n)).toBe(before);
    }
  });
});

describe('Alipay red packets', () => {
  it('are received at once: red_packet.sent then red_packet.received', async () => {
    const res = await alipayPacket();
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ object: 'red_packet', channel: 'alipay', status: 'received', amount: 666 });
    expect(res.body.received_at).toBeGreaterThan(0);
    expect(await eventTypes(res.body.id)).toEqual(['red_packet.sent', 'red_packet.received']);
    // There is no recipient step to simulate.
    expect((await g.api('POST', `/v1/test_helpers/red_packets/${res.body.id}/simulate`, { outcome: 'open' })).status).toBe(400);
  });

  it('a refused one fails; a WeChat scene is refused naming scene_id', async () => {
    const failed = (await alipayPacket({ recipient: { type: 'alipay_user_id', account: '2088999999999999' } })).body;
    expect(failed).toMatchObject({ status: 'failed', failure_code: 'PAYEE_NOT_EXIST' });
    expect(await eventTypes(failed.id)).toEqual(['red_packet.failed']);
    const scene = await alipayPacket({ scene_id: 'PRODUCT_1' });
    expect(scene.status).toBe(400);
    expect(scene.body.error.param).toBe('scene_id');
  });
});
