import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { unzipSync } from 'fflate';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { haveChromium, launchBrowser } from '../support/browser.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { beijingDate } from '../../server/dashboard/format.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { ZM_FIELDS, unionpayStatements } from '../../server/channels/unionpay/statement.ts';
import { zipGbk } from '../../server/sandbox/alipay/statement.ts';
import type { UnionpayCredentials } from '../../server/channels/unionpay/index.ts';

// A console user uploads a UnionPay settlement zip (as downloaded from the merchant portal) in
// which discrepancies were planted, on the reconciliation page, and sees each on the day's report.

/** Byte offset and width of a ZM field (fields are fixed-width, one space between). */
function fieldAt(name: string): { at: number; width: number } {
  let at = 0;
  for (const [n, w] of ZM_FIELDS) {
    if (n === name) return { at, width: w };
    at += w + 1;
  }
  throw new Error(name);
}

function setField(line: string, name: string, value: string): string {
  const { at, width } = fieldAt(name);
  return line.slice(0, at) + value.padStart(width, '0').slice(0, width) + line.slice(at + width);
}

describe.skipIf(!haveChromium)('statement upload in the console (Chromium)', () => {
  let g: TestGateway;
  let browser: Browser;
  let seq = 0;
  const today = beijingDate(Date.now());

  beforeAll(async () => {
    g = await startTestGateway({ workers: false });
    await createConsoleUser(g.deps.db, { email: 'finance@shop.example', appId: g.app.app_id, password: 'a long enough passphrase' });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await g?.close();
  });

  async function pay(amount: number, notify: 'normal' | 'drop' = 'normal') {
    const p = (await g.api('POST', '/v1/payments', { amount, subject: 'Statement e2e', out_trade_no: `se2e_${Date.now()}_${++seq}`, channel: 'unionpay_pc' })).body;
    expect((await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'unionpay_pc', outcome: 'pay', notify })).status).toBe(200);
    return { id: p.id as string, orderNo: (await g.deps.db('payment_attempts').where({ payment_id: p.id }).first()).channel_order_no as string };
  }

  it('uploads a settlement file with planted discrepancies and sees each reported, linked to its payment', async () => {
    const fine = await pay(1000);
    const dropped = await pay(1500); // left out of the file: here, not at the channel
    const changed = await pay(1800); // the file says another amount
    const missed = await pay(2300, 'drop'); // paid at the channel, pending here

    // The day's zip as UnionPay gives it, then edited the way a wrong file would be.
    const cred = (await getCredentials(g.deps, g.app.app_id, 'unionpay', false)) as UnionpayCredentials;
    const got = await unionpayStatements.fetchStatement(cred, today, 'trade');
    if (got.status !== 'fetched') throw new Error('no settlement file');
    const entries = unzipSync(new Uint8Array(got.file.body));
    const zmName = Object.keys(entries).find((n) => n.includes('ZM_') && !n.includes('ZME_'))!;
    const lines = Buffer.from(entries[zmName]!).toString('latin1').split('\r\n').filter(Boolean);
    const orderOf = (l: string) => l.slice(fieldAt('orderId').at, fieldAt('orderId').at + 32).trim();
    const kept = lines.filter((l) => orderOf(l) !== dropped.orderNo).map((l) => (orderOf(l) === changed.orderNo ? setField(l, 'txnAmt', '1900') : l));
    const stranger = setField(kept[0]!, 'queryId', '9'.repeat(21));
    const foreignOrder = 'NOTOURS0000001';
    const { at, width } = fieldAt('orderId');
    kept.push(stranger.slice(0, at) + foreignOrder.padEnd(width, ' ') + stranger.slice(at + width));
    const zip = zipGbk([{ name: zmName, data: Buffer.from(kept.join('\r\n') + '\r\n', 'latin1') }]);

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${g.url}/console/login`);
    await page.getByLabel('Email').fill('finance@shop.example');
    await page.getByLabel('Password').fill('a long enough passphrase');
    await Promise.all([page.waitForURL(/\/console\/payments$/), page.locator('form[action$="/login"] button[type="submit"]').click()]);

    await page.goto(`${g.url}/console/reconciliation`);
    await page.locator('#upload-channel').selectOption('unionpay');
    await page.locator('#upload-kind').selectOption('trade');
    await page.locator('#upload-date').fill(today);
    await page.locator('#upload-file').setInputFiles({ name: `${cred.merId}_${today.replace(/-/g, '')}.zip`, mimeType: 'application/zip', buffer: zip });
    await Promise.all([
      page.waitForURL(new RegExp(`/console/reconciliation/statements/unionpay/${today}\\?done=uploaded$`)),
      page.locator('form[action$="/statements/upload"] button[type="submit"]').click(),
    ]);

    const open = page.locator('tr[data-discrepancy][data-status="open"]');
    const found = await open.evaluateAll((rows) => rows.map((r) => `${r.getAttribute('data-discrepancy')}:${r.getAttribute('data-order-no')}`));
    expect(found.sort()).toEqual([
      `amount_mismatch:${changed.orderNo}`,
      `ours_not_theirs:${dropped.orderNo}`,
      `status_mismatch:${missed.orderNo}`,
      `theirs_not_ours:${foreignOrder}`,
    ].sort());
    expect(found.some((f) => f.endsWith(fine.orderNo))).toBe(false);
    // Each of ours links to its payment.
    for (const p of [dropped, changed, missed]) {
      await expect(page.locator(`tr[data-order-no="${p.orderNo}"] a[href$="/console/payments/${p.id}"]`).count()).resolves.toBe(1);
    }
    // The stored file is the one uploaded.
    await expect(page.locator('[data-statement-files] tr[data-kind="trade"]').getAttribute('data-status')).resolves.toBe('fetched');
    await context.close();
  });
});
