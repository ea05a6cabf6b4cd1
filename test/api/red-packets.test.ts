/**
 * Red packets through the API: WeChat's (v2 sendredpack over mutual TLS, polled with gethbinfo:
 * no notify exists) sent, opened or refunded after 24 h (test helper),; bad input that sends nothing; a packet whose send was
 * interrupted is finished by the worker under the same number.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { wechatpaySandbox } from '../../server/sandbox/wechatpay/index.ts';
import { startPaymentWorker } from '../../server/payments/worker.ts';

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

const count = async (where: Record<string, unknown> = {}) => Number((await g.deps.db('red_packets').where(where).count({ n: '*' }))[0].n);
const eventTypes = async (id: string) => (await g.deps.db('events').where({ object_id: id }).orderBy([{ column: 'created', order: 'asc' }, { column: 'id', order: 'asc' }])).map((e) => e.type);
const packet = (body: Record<string, unknown> = {}) => g.api('POST', '/v1/red_packets', {
  channel: 'wechatpay', amount: 888, out_red_packet_no: no('rp'), recipient: { type: 'wechat_openid', account: openid },
  sender_name: 'Test Shop', wishing: '恭喜发财', act_name: '新年活动', remark: '多多益善', ...body,
});
const simulate = (id: string, outcome: string) => g.api('POST', `/v1/test_helpers/red_packets/${id}/simulate`, { outcome });

async function workerPass(ms = 2 * 3600_000) {
  const w = startPaymentWorker(g.deps, { background: false, now: () => Date.now() + ms });
  try {
    return await w.runOnce();
  } finally {
    await w.stop();
  }
}

describe('WeChat red packets', () => {
  it('are sent, then received when opened: red_packet.sent then red_packet.received', async () => {
    const res = await packet();
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const p = res.body;
    expect(p).toMatchObject({ object: 'red_packet', channel: 'wechatpay', amount: 888, wishing: '恭喜发财', received_at: null });
    expect(['sending', 'sent']).toContain(p.status);
    expect(p.id).toMatch(/^rp_/);
    // The poll finds it sent (SENT is not final: it keeps being polled).
    if (p.status === 'sending') await workerPass();
    expect((await g.api('GET', `/v1/red_packets/${p.id}`)).body.status).toBe('sent');
    const opened = await simulate(p.id, 'open');
    expect(opened.status, JSON.stringify(opened.body)).toBe(200);
    expect(opened.body.status).toBe('received');
    expect(opened.body.received_at).toBeGreaterThan(0);
    expect(await eventTypes(p.id)).toEqual(['red_packet.sent', 'red_packet.received']);
    await workerPass();
    expect(await eventTypes(p.id)).toEqual(['red_packet.sent', 'red_packet.received']);
  });

  it('left unopened for 24 h they are refunded', async () => {
    const p = (await packet()).body;
    if (p.status === 'sending') await workerPass();
    const after = (await simulate(p.id, 'expire')).body;
    expect(after.status).toBe('refunded');
    expect(after.refunded_at).toBeGreaterThan(0);
    expect(await eventTypes(p.id)).toEqual(['red_packet.sent', 'red_packet.refunded']);
    expect((await simulate(p.id, 'open')).status).toBe(400);
  });

  it('bad input: below ¥1 without scene_id, over ¥200 without it, a malformed openid, an unknown field', async () => {
    const before = await count();
    for (const [body, param] of [
      [{ amount: 99 }, 'scene_id'],
      [{ amount: 20_001 }, 'scene_id'],
      [{ recipient: { type: 'wechat_openid', account: 'bad openid' } }, 'recipient.account'],
      [{ recipient: { type: 'alipay_user_id', account: '2088000000000001' } }, 'recipient.type'],
      [{ wishing: '' }, 'wishing'],
      [{ colour: 'red' }, 'colour'],
    ] as const) {
      const res = await packet(body as Record<string, unknown>);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error.param).toBe(param);
    }
    expect(await count()).toBe(before);
  });

  it('one out_red_packet_no is one packet', async () => {
    const out = no('same');
    const answers = await Promise.all(Array.from({ length: 10 }, () => packet({ out_red_packet_no: out })));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(await count({ out_red_packet_no: out })).toBe(1);
  });
});
