/**
 * WeChat Pay 委托代扣 (papay) through the adapter (server/channels/wechatpay/papay.ts) against the
 * simulator over real HTTP(S): the entrustweb page signed by the WeChat user, the contract
 * notifies (verified; forged refused), querycontract, deletecontract, the user's own 解约, the
 * pre-deduction notice and pappayapply / paporderquery with the simulator's clock standing at
 * the Beijing time each case needs.
 */
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandboxServer, waitFor } from './sandbox-server.ts';
import { wechatpay, type WechatpayCredentials } from '../../server/channels/wechatpay/index.ts';
import {
  applyDeduction, deleteContract, entrustWebUrl, papayAck, papayNotificationOf, queryContract, queryDeduction, sendPreDeductNotice,
} from '../../server/channels/wechatpay/papay.ts';
import { buildXml, v2Sign } from '../../server/channels/wechatpay/v2.ts';
import { acceptWechatpaySandboxTls, actAsPapayUser, cancelPapayNotifies, createWechatpaySandboxRouter, wechatpaySandbox } from '../../server/sandbox/wechatpay/index.ts';
import { setSandboxClock } from '../../server/sandbox/clock.ts';
import { ChannelRequestError, ChannelUnavailable, SignatureError } from '../../server/errors.ts';
import type { ChannelNotification } from '../../server/channels/types.ts';

let world: Awaited<ReturnType<typeof startSandboxServer>>;
let cred: WechatpayCredentials;
let seq = 0;
const received: ChannelNotification[] = [];

beforeAll(async () => {
  world = await startSandboxServer();
  world.app.use('/sandbox/wechatpay', createWechatpaySandboxRouter(world.deps));
  acceptWechatpaySandboxTls(world.server, () => world.deps);
  // The gateway's notify URL stand-in: verifies as the gateway does, answers in v2 XML.
  world.app.post('/notify/wechatpay/:app', express.text({ type: () => true }), (req, res) => {
    try {
      received.push(papayNotificationOf(cred, req.body as string));
      const ack = papayAck(true);
      res.status(ack.status).type(ack.contentType).send(ack.body);
    } catch {
      const ack = papayAck(false);
      res.status(ack.status).type(ack.contentType).send(ack.body);
    }
  });
  const raw = (await (await wechatpaySandbox.draftMerchant(world.deps)).register(world.db)) as Record<string, any>;
  cred = wechatpay.parseCredentials(raw);
});

afterAll(async () => {
  cancelPapayNotifies();
  world.server.closeAllConnections();
  await new Promise((r) => world.server.close(r));
  await world.db.destroy();
});

const notifyUrl = () => `${world.base}/notify/wechatpay/app_papay`;
/** Stands the simulator's clock for the merchant at a Beijing time (`yyyy-MM-ddTHH:mm`). */
const standAt = (beijing: string) => setSandboxClock(world.db, 'wechatpay', cred.mchid, Date.parse(`${beijing}:00+08:00`) - Date.now());

async function openPage(url: string) {
  const res = await fetch(url);
  const html = await res.text();
  const field = (name: string) => html.match(new RegExp(`name="${name}" value="([^"]+)"`))?.[1] ?? '';
  return { status: res.status, html, form: { mch_id: field('mch_id'), contract_code: field('contract_code'), t: field('t') } };
}

async function userAct(form: Record<string, string>, action: 'sign' | 'refuse' | 'cancel') {
  const res = await fetch(`${world.base}/sandbox/wechatpay/papay/action`, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ ...form, action }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** A contract signed by the WeChat user on the entrustweb page; its ADD notify received. */
async function signedContract() {
  const contractCode = `CSpap${Date.now()}n${++seq}`;
  const page = await openPage(entrustWebUrl(cred, { contractCode, displayAccount: `user${seq}`, notifyUrl: notifyUrl() }));
  expect(page.status, page.html.slice(0, 300)).toBe(200);
  const signed = await userAct(page.form, 'sign');
  expect(signed.body.status).toBe('SIGNED');
  const n = await waitFor(() => received.find((x) => x.kind === 'agreement' && x.externalAgreementNo === contractCode && x.status === 'active'));
  return { contractCode, contractId: (n as any).channelAgreementNo as string, form: page.form };
}

const order = (contractId: string, amount = 2500) => ({ orderNo: `cs${Date.now()}${++seq}`, contractId, amount, subject: 'Monthly plan', notifyUrl: notifyUrl() });

describe('委托代扣 contracts', () => {
  it('the entrustweb URL is signed with the v2 key (MD5 over raw values); the user signs; ADD notify verified; querycontract says 0', async () => {
    const contractCode = `CSpap${Date.now()}n${++seq}`;
    const url = new URL(entrustWebUrl(cred, { contractCode, displayAccount: 'alice', notifyUrl: notifyUrl() }));
    expect(url.pathname).toBe('/sandbox/wechatpay/papay/entrustweb');
    const q = Object.fromEntries(url.searchParams);
    expect(q).toMatchObject({ appid: cred.appid, mch_id: cred.mchid, plan_id: cred.papayPlanId, contract_code: contractCode, version: '1.0', notify_url: notifyUrl() });
    expect(q.request_serial).toMatch(/^\d{1,12}$/);
    expect(q.timestamp).toMatch(/^\d{10}$/);
    const { sign, ...rest } = q;
    expect(sign).toBe(v2Sign(rest, cred.v2!.apiKey.reveal()));
    // A tampered URL is refused by the page.
    const tampered = new URL(url);
    tampered.searchParams.set('contract_display_account', 'mallory');
    const bad = await openPage(tampered.toString());
    expect([bad.status, bad.html.includes('SIGNERROR')]).toEqual([400, true]);

    expect(await queryContract(cred, contractCode)).toEqual({ status: 'pending' });
    const page = await openPage(url.toString());
    expect(page.html).toContain('data-sandbox-action="sign"');
    expect((await userAct(page.form, 'refuse')).body.status).toBe('SIGNING');
    expect(await queryContract(cred, contractCode)).toEqual({ status: 'pending' });
    expect((await userAct(page.form, 'sign')).body.status).toBe('SIGNED');
    const n = await waitFor(() => received.find((x) => x.kind === 'agreement' && x.externalAgreementNo === contractCode));
    expect(n).toMatchObject({ kind: 'agreement', status: 'active', externalAgreementNo: contractCode });
    const state = await queryContract(cred, contractCode);
    expect(state).toEqual({ status: 'active', contractId: (n as any).channelAgreementNo });
    // The page of a signed contract is refused.
    expect((await openPage(url.toString())).status).toBe(409);
  });

  it('forged contract notifies are refused: a wrong key, another mch_id, another plan', () => {
    const fields = { return_code: 'SUCCESS', result_code: 'SUCCESS', mch_id: cred.mchid, contract_code: 'CSx', plan_id: cred.papayPlanId!, change_type: 'DELETE', contract_id: '2123', operate_time: '2030-01-01 10:00:00' };
    const forged = buildXml({ ...fields, sign: v2Sign(fields, 'A'.repeat(32)) });
    expect(() => papayNotificationOf(cred, forged)).toThrow(SignatureError);
    const key = cred.v2!.apiKey.reveal();
    const other = { ...fields, mch_id: '1900000001' };
    expect(() => papayNotificationOf(cred, buildXml({ ...other, sign: v2Sign(other, key) }))).toThrow(/another mch_id/);
    const plan = { ...fields, plan_id: '999' };
    expect(() => papayNotificationOf(cred, buildXml({ ...plan, sign: v2Sign(plan, key) }))).toThrow(/another plan_id/);
    expect(papayNotificationOf(cred, buildXml({ ...fields, sign: v2Sign(fields, key) }))).toMatchObject({ kind: 'agreement', status: 'terminated', channelAgreementNo: '2123', terminatedBy: 'customer' });
  });

  it('the merchant terminates (deletecontract, mode 3): DELETE notified, querycontract 1, a second delete is done too', async () => {
    const c = await signedContract();
    await deleteContract(cred, c.contractId, 'test');
    const n = await waitFor(() => received.find((x) => x.kind === 'agreement' && x.externalAgreementNo === c.contractCode && x.status === 'terminated'));
    expect(n).toMatchObject({ terminatedBy: 'merchant' });
    expect(await queryContract(cred, c.contractCode)).toMatchObject({ status: 'terminated', mode: '3' });
    await deleteContract(cred, c.contractId, 'again');
  });

  it("the user's own 解约 in WeChat: DELETE (mode 2) to the template's unsign URL; deductions refused after", async () => {
    const c = await signedContract();
    expect((await userAct(c.form, 'cancel')).body.status).toBe('TERMINATED');
    const n = await waitFor(() => received.find((x) => x.kind === 'agreement' && x.externalAgreementNo === c.contractCode && x.status === 'terminated'));
    expect(n).toMatchObject({ terminatedBy: 'customer', channelAgreementNo: c.contractId });
    await standAt('2030-03-01T10:00');
    await expect(sendPreDeductNotice(cred, c.contractId, { amount: 100 })).rejects.toThrow(/RESOURCE_NOT_EXISTS/);
    expect(await applyDeduction(cred, order(c.contractId))).toMatchObject({ status: 'failed', code: 'CONTRACT_NOT_EXIST' });
  });
});

describe('委托代扣 deductions', () => {
  it('notice, wait, deduct: accepted, settled by the PAP notify and paporderquery; a repeat is ORDERPAID → succeeded, no second charge', async () => {
    const c = await signedContract();
    await standAt('2030-03-01T10:00');
    await sendPreDeductNotice(cred, c.contractId, { amount: 2500 });
    await standAt('2030-03-03T10:00');
    const o = order(c.contractId);
    expect(await applyDeduction(cred, o)).toEqual({ status: 'pending' });
    const q = await queryDeduction(cred, o.orderNo);
    expect(q).toMatchObject({ status: 'succeeded', amount: 2500 });
    const n = await waitFor(() => received.find((x) => x.kind === 'payment' && x.orderNo === o.orderNo));
    expect(n).toMatchObject({ kind: 'payment', status: 'succeeded', amount: 2500, merchantId: cred.mchid, channelTradeNo: (q as any).channelTradeNo });
    expect(await applyDeduction(cred, o)).toMatchObject({ status: 'succeeded', channelTradeNo: (q as any).channelTradeNo });
    // The notice is used up: another deduction needs a notice of its own.
    expect(await applyDeduction(cred, order(c.contractId))).toMatchObject({ status: 'failed', code: 'RULELIMIT' });
    expect(await queryDeduction(cred, 'cs_never_sent')).toEqual({ status: 'not_found' });
  });

  it('the pre-notice rule: no notice, the waiting day, over the estimate, after the deduction days: RULELIMIT; notice only 06:00–22:00', async () => {
    const c = await signedContract();
    await standAt('2030-04-01T10:00');
    const none = await applyDeduction(cred, order(c.contractId));
    expect(none).toMatchObject({ status: 'failed', code: 'RULELIMIT' });
    expect((none as any).message).toMatch(/预扣费通知/);
    await standAt('2030-04-01T23:00');
    await expect(sendPreDeductNotice(cred, c.contractId, { amount: 2500 })).rejects.toThrow(ChannelRequestError);
    await standAt('2030-04-01T21:59');
    await sendPreDeductNotice(cred, c.contractId, { amount: 2500 });
    await standAt('2030-04-02T12:00');
    expect((await applyDeduction(cred, order(c.contractId))) as any).toMatchObject({ status: 'failed', code: 'RULELIMIT', message: expect.stringMatching(/等待/) });
    await standAt('2030-04-03T00:30');
    expect((await applyDeduction(cred, order(c.contractId, 2600))) as any).toMatchObject({ status: 'failed', code: 'RULELIMIT', message: expect.stringMatching(/金额/) });
    await standAt('2030-04-05T00:30');
    expect((await applyDeduction(cred, order(c.contractId))) as any).toMatchObject({ status: 'failed', code: 'RULELIMIT', message: expect.stringMatching(/扣费期/) });
    await standAt('2030-04-04T23:59');
    expect(await applyDeduction(cred, order(c.contractId))).toEqual({ status: 'pending' });
  });

  it('insufficient funds (…51): accepted, then PAY_FAIL NOTENOUGH by query, no notify; a retry inside the period succeeds', async () => {
    const c = await signedContract();
    await standAt('2030-05-01T10:00');
    await sendPreDeductNotice(cred, c.contractId, { amount: 3000 });
    await standAt('2030-05-03T10:00');
    const o = order(c.contractId, 1051);
    expect(await applyDeduction(cred, o)).toEqual({ status: 'pending' });
    expect(await queryDeduction(cred, o.orderNo)).toMatchObject({ status: 'failed', code: 'NOTENOUGH' });
    const retry = order(c.contractId, 1000);
    expect(await applyDeduction(cred, retry)).toEqual({ status: 'pending' });
    expect(await queryDeduction(cred, retry.orderNo)).toMatchObject({ status: 'succeeded' });
    await new Promise((r) => setTimeout(r, 200));
    expect(received.some((x) => x.kind === 'payment' && x.orderNo === o.orderNo)).toBe(false);
  });

  it('an unknown answer (…52): SYSTEMERROR thrown as ChannelUnavailable, yet charged: the query says succeeded and a resend is ORDERPAID', async () => {
    const c = await signedContract();
    await standAt('2030-06-01T10:00');
    await sendPreDeductNotice(cred, c.contractId, { amount: 3000 });
    await standAt('2030-06-03T10:00');
    const o = order(c.contractId, 2052);
    await expect(applyDeduction(cred, o)).rejects.toThrow(ChannelUnavailable);
    expect(await queryDeduction(cred, o.orderNo)).toMatchObject({ status: 'succeeded', amount: 2052 });
    expect(await applyDeduction(cred, o)).toMatchObject({ status: 'succeeded' });
  });
});
