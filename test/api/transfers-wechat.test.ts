/**
 * WeChat-only transfer cases (商家转账, user-confirmation mode) through the API against the
 * WeChat simulator: the next_action the merchant's page hands to WeChat, a declined or lapsed
 * balance-funded transfer credited back, the encrypted name, bad input. Confirmation, lapse,
 * cancel, refusal, the unknown answer and forged, mismatched or duplicate notifies are the
 * money-out conformance suite's (test/conformance/money-out.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { newCustomer, topUp, expectLedgerConsistent } from '../support/accounts.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { wechatpaySandbox } from '../../server/sandbox/wechatpay/index.ts';

let g: TestGateway;
let openid: string;
let seq = 0;
const no = (p: string) => `${p}_${Date.now().toString(36)}_${++seq}`;

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  const cred: any = await getCredentials(g.deps, g.app.app_id, 'wechatpay', false);
  openid = wechatpaySandbox.payerId!({ db: g.deps.db, publicUrl: g.deps.config.publicUrl, masterKey: g.deps.config.masterKeyBytes, logger: g.deps.logger }, cred.appid);
});
afterAll(() => g?.close());

const eventTypes = async (id: string) => (await g.deps.db('events').where({ object_id: id }).orderBy([{ column: 'created', order: 'asc' }, { column: 'id', order: 'asc' }])).map((e) => e.type);
const wechatTransfer = (body: Record<string, unknown> = {}) => g.api('POST', '/v1/transfers', {
  channel: 'wechatpay', amount: 1000, out_transfer_no: no('wx'), recipient: { type: 'wechat_openid', account: openid }, description: '佣金', ...body,
});
const simulate = (id: string, outcome: string) => g.api('POST', `/v1/test_helpers/transfers/${id}/simulate`, { outcome });

describe('WeChat transfers', () => {
  it('wait for the recipient with what the merchant page hands to WeChat (package_info)', async () => {
    const res = await wechatTransfer();
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const t = res.body;
    expect(t.status).toBe('awaiting_recipient');
    const cred: any = await getCredentials(g.deps, g.app.app_id, 'wechatpay', false);
    expect(t.next_action).toMatchObject({ type: 'wechat_transfer_confirm', wechat_transfer_confirm: { mch_id: cred.mchid, app_id: cred.appid } });
    expect(t.next_action.wechat_transfer_confirm.package_info).toMatch(/\S{8,}/);
    expect(await eventTypes(t.id)).toEqual(['transfer.awaiting_recipient']);
  });

  it('declined or left for 24 h they fail; a balance-funded one gives the money back', async () => {
    const declined = (await wechatTransfer()).body;
    expect((await simulate(declined.id, 'decline')).body).toMatchObject({ status: 'failed' });
    const c = await newCustomer(g, { out_user_id: no('wxpayee') });
    await topUp(g, c.id, 3000);
    const lapsed = (await wechatTransfer({ amount: 2000, customer: c.id, source: 'balance' })).body;
    expect(lapsed.status).toBe('awaiting_recipient');
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(1000);
    const after = (await simulate(lapsed.id, 'expire')).body;
    expect(after).toMatchObject({ status: 'failed', failure_code: 'OVERDUE_CLOSE' });
    expect((await g.api('GET', `/v1/customers/${c.id}`)).body.balance).toBe(3000);
    expect(await eventTypes(lapsed.id)).toEqual(['transfer.awaiting_recipient', 'transfer.failed']);
    await expectLedgerConsistent(g.deps.db);
  });

  it('from ¥2,000 a name is required; given, it is sent encrypted', async () => {
    const noName = await wechatTransfer({ amount: 200_000 });
    expect(noName.status).toBe(400);
    expect(noName.body.error.param).toBe('recipient.name');
    const named = await wechatTransfer({ amount: 200_000, recipient: { type: 'wechat_openid', account: openid, name: '李四' } });
    expect(named.status, JSON.stringify(named.body)).toBe(200);
    expect(named.body.status).toBe('awaiting_recipient');
  });

  it('bad input: a malformed openid, below ¥0.10, an Alipay recipient type', async () => {
    for (const [body, param] of [
      [{ recipient: { type: 'wechat_openid', account: 'not an openid!' } }, 'recipient.account'],
      [{ amount: 9 }, 'amount'],
      [{ recipient: { type: 'alipay_user_id', account: '2088000000000001' } }, 'recipient.type'],
    ] as const) {
      const res = await wechatTransfer(body as Record<string, unknown>);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error.param).toBe(param);
    }
  });
});
