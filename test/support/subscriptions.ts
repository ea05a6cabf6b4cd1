import crypto from 'node:crypto';
import { expect } from 'vitest';
import type { TestGateway } from './gateway.ts';
import { newCustomer } from './accounts.ts';

/** Today's date in Beijing, yyyy-MM-dd, shifted by `days`. */
export const beijingDay = (days = 0) => new Date(Date.now() + 8 * 3600_000 + days * 86_400_000).toISOString().slice(0, 10);

export async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, tries = 200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await read();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The wallet user's action on the simulator's signing page of an agreement. */
export async function walletAct(g: TestGateway, form: { app_id: string; external_agreement_no: string; t: string }, action: 'sign' | 'refuse' | 'unsign') {
  const res = await fetch(`${g.url}/sandbox/alipay/agreement/action`, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ ...form, action }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** A customer's agreement, signed at the simulator and active (by its real sign notify). */
export async function signedAgreement(g: TestGateway, periodRule: Record<string, unknown>, singleAmountMax = 3000) {
  const c = await newCustomer(g, { out_user_id: `u_${crypto.randomBytes(5).toString('hex')}` });
  const created = await g.api('POST', '/v1/agreements', { customer: c.id, channel: 'alipay', period_rule: periodRule, single_amount_max: singleAmountMax });
  expect(created.status, JSON.stringify(created.body)).toBe(200);
  const page = await fetch(created.body.next_action.redirect_url);
  const html = await page.text();
  expect(page.status, html.slice(0, 300)).toBe(200);
  const field = (name: string) => html.match(new RegExp(`name="${name}" value="([^"]+)"`))?.[1] ?? '';
  const form = { app_id: field('app_id'), external_agreement_no: field('external_agreement_no'), t: field('t') };
  expect((await walletAct(g, form, 'sign')).body.status).toBe('NORMAL');
  const agreement = await until(async () => (await g.api('GET', `/v1/agreements/${created.body.id}`)).body, (a) => a.status === 'active', 'agreement.active');
  return { customer: c, agreement, form };
}
