/**
 * Channel onboarding in the console (issue 16): the guide lists this gateway's addresses for the
 * app, the checklist's ticks persist (CSRF-checked), "Check credentials" passes every step against
 * the simulators over real HTTP and fails at the right step for a tampered config without showing
 * a secret, and an expiring certificate raises the banner on every page.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { getCredentials, readStoredConfigs, setChannelConfig } from '../../server/apps/channel-configs.ts';
import { seal } from '../../server/crypto.ts';
import { beijingTime } from '../../server/dashboard/format.ts';
import { issueCertificate, randomSerial } from '../../server/sandbox/unionpay/x509.ts';
import type { Provider } from '../../server/channels/types.ts';
import { ConsoleClient } from '../support/console.ts';

const PASSWORD = 'a long enough passphrase';
let g: TestGateway;
let app: CreatedApp;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  app = await createApp(g.deps.db, { name: 'Onboarding Shop' });
  await createConsoleUser(g.deps.db, { email: 'owner@onboarding.example', appId: app.app_id, password: PASSWORD });
  await createConsoleUser(g.deps.db, { email: 'viewer@onboarding.example', appId: app.app_id, password: PASSWORD, role: 'viewer' });
});
afterAll(() => g?.close());

async function loggedIn(email = 'owner@onboarding.example'): Promise<ConsoleClient> {
  const c = new ConsoleClient(g.url);
  expect((await c.login(email, PASSWORD)).status).toBe(303);
  return c;
}

const stepOf = (html: string, id: string) => new RegExp(`data-step="${id}" data-status="([a-z_]+)"`).exec(html)?.[1];
const stepMessage = (html: string, id: string) => new RegExp(`data-step="${id}"[\\s\\S]*?<p data-step-message>([^<]*)</p>`).exec(html)?.[1] ?? '';
const pem = (k: crypto.KeyObject) => (k.type === 'private' ? k.export({ format: 'pem', type: 'pkcs8' }) : k.export({ format: 'pem', type: 'spki' })).toString();
/** Stores a config as the gateway would, without the upload's validation: a tampered database. */
async function storeDirectly(appId: string, provider: Provider, livemode: boolean, raw: unknown) {
  const sealed = seal(g.deps.config.masterKeyBytes, JSON.stringify(raw), `channel:${appId}:${provider}:${livemode ? 'live' : 'test'}`);
  await g.deps.db('channel_configs').where({ app_id: appId, provider, livemode }).update({ config_sealed: sealed, generated: false });
}
async function check(c: ConsoleClient, provider: Provider, mode = 'test') {
  const token = await c.tokenFrom(`/console/channels/${provider}?mode=${mode}`);
  return c.post(`/console/channels/${provider}/check`, { _csrf: token, mode });
}

describe('console: channel onboarding', () => {
  it("lists this gateway's addresses for the app, per channel", async () => {
    const c = await loggedIn();
    const base = g.deps.config.publicUrl.replace(/\/$/, '');
    const host = new URL(base).host;
    const alipay = await c.get('/console/channels/alipay');
    expect(alipay.status).toBe(200);
    expect(alipay.text).toContain(`${base}/notify/alipay/${app.app_id}`);
    expect(alipay.text).toContain('应用网关');
    expect(alipay.text).toContain('电脑网站支付');
    expect(alipay.text).toContain(`${base}/pay/&lt;checkout token&gt;/return`);
    const wechat = await c.get('/console/channels/wechatpay');
    expect(wechat.text).toContain(`<code data-address>${new URL(base).origin}/</code>`);
    expect(wechat.text).toContain(`<code data-address>${host}</code>`);
    expect(wechat.text).toContain('H5支付域名');
    expect(wechat.text).toContain(`${base}/notify/wechatpay/${app.app_id}`);
    expect((await c.get('/console/channels/unionpay')).text).toContain(`${base}/notify/unionpay/${app.app_id}`);
    expect((await c.get('/console/channels/paypal')).text).toContain(`${base}/notify/paypal/${app.app_id}`);
    const stripe = await c.get('/console/channels/stripe');
    expect(stripe.text).toContain(`${base}/notify/stripe/${app.app_id}`);
    expect(stripe.text).toContain('checkout.session.completed');
    expect((await c.get('/console/channels')).text).toContain(`href="/console/channels/alipay" data-onboarding-link`);
    expect((await c.get('/console/channels/nosuch')).status).toBe(404);
  });

  it('keeps the ticks per mode; a form without the token or from another site changes nothing', async () => {
    const c = await loggedIn();
    const token = await c.tokenFrom('/console/channels/wechatpay');
    const saved = await c.post('/console/channels/wechatpay/checklist', { _csrf: token, mode: 'test', items: ['merchant', 'apiv3_key'] });
    expect(saved.status).toBe(303);
    const page = await c.get(saved.location!);
    expect(page.text).toContain('data-saved');
    expect(page.text).toMatch(/id="item-merchant" name="items" value="merchant" checked/);
    expect(page.text).toMatch(/id="item-apiv3_key" name="items" value="apiv3_key" checked/);
    expect(page.text).not.toMatch(/id="item-h5_domain" name="items" value="h5_domain" checked/);
    // Live mode has its own list.
    expect((await c.get('/console/channels/wechatpay?mode=live')).text).not.toMatch(/value="merchant" checked/);

    expect((await c.post('/console/channels/wechatpay/checklist', { mode: 'test', items: [] })).status).toBe(403);
    expect((await c.post('/console/channels/wechatpay/checklist', { _csrf: token, mode: 'test', items: [] }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await c.post('/console/channels/wechatpay/checklist', { _csrf: token, mode: 'test', items: ['not_an_item'] })).status).toBe(400);
    const viewer = await loggedIn('viewer@onboarding.example');
    const viewerToken = await viewer.tokenFrom('/console/channels/wechatpay');
    expect((await viewer.post('/console/channels/wechatpay/checklist', { _csrf: viewerToken, mode: 'test', items: [] })).status).toBe(403);
    expect((await viewer.post('/console/channels/wechatpay/check', { _csrf: viewerToken, mode: 'test' })).status).toBe(403);
    const rows = await g.deps.db('channel_onboarding_items').where({ app_id: app.app_id, provider: 'wechatpay' }).orderBy('item');
    expect(rows.map((r) => r.item)).toEqual(['apiv3_key', 'merchant']);

    // Unticking one keeps the other's original tick.
    expect((await c.post('/console/channels/wechatpay/checklist', { _csrf: token, mode: 'test', items: 'merchant' })).status).toBe(303);
    const after = await g.deps.db('channel_onboarding_items').where({ app_id: app.app_id, provider: 'wechatpay' });
    expect(after.map((r) => r.item)).toEqual(['merchant']);
    expect(Number(after[0].checked_ms)).toBe(Number(rows.find((r) => r.item === 'merchant').checked_ms));
    // The audit row is written once the answer has been sent.
    await vi.waitFor(async () => expect((await g.deps.db('audit_log').where({ app_id: app.app_id, action: 'channel_onboarding.checklist' })).length).toBe(2), { timeout: 5_000 });
  });

  it('checks provisioned test-mode credentials of every channel against its simulator: all steps pass', async () => {
    const c = await loggedIn();
    for (const provider of ['alipay', 'wechatpay', 'unionpay', 'paypal', 'stripe'] as const) {
      const res = await check(c, provider);
      expect(res.status, provider).toBe(200);
      expect(res.text, `${provider}: ${stepMessage(res.text, 'signed_call')}`).toContain('data-check-result="ok"');
      expect(stepOf(res.text, 'parse')).toBe('ok');
      expect(stepOf(res.text, 'signed_call'), provider).toBe('ok');
      expect(['ok', 'not_applicable']).toContain(stepOf(res.text, 'key_pair'));
      expect(['ok', 'not_applicable']).toContain(stepOf(res.text, 'certificates'));
    }
    // Certificate mode: every certificate with its notAfter.
    const alipay = await check(c, 'alipay');
    expect(stepOf(alipay.text, 'key_pair')).toBe('ok');
    expect(stepOf(alipay.text, 'certificates')).toBe('ok');
    for (const f of ['app_cert', 'alipay_public_cert', 'alipay_root_cert']) expect(alipay.text).toContain(`data-certificate="${f}" data-state="valid"`);
    const unionpay = await check(c, 'unionpay');
    expect(unionpay.text).toContain('data-certificate="sign_cert"');
    expect(stepMessage(unionpay.text, 'key_pair')).toContain('sign_key belongs to sign_cert');
    expect(stepOf((await check(c, 'paypal')).text, 'key_pair')).toBe('not_applicable');
    // No banner: every certificate is valid for years.
    expect((await c.get('/console/payments')).text).not.toContain('data-certificate-alerts');
  });

  it('fails a tampered config at the right step, in clear words, with no secret on the page', async () => {
    const c = await loggedIn();
    await getCredentials(g.deps, app.app_id, 'alipay', false);
    const [stored] = await readStoredConfigs(g.deps, app.app_id, { provider: 'alipay', livemode: false });
    const raw = stored!.raw as Record<string, string>;
    const secretLine = raw.private_key.split('\n')[2]!;

    // A foreign Alipay public key (public-key mode): parses, pairs, but the answer does not verify.
    const foreign = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const { app_cert: _a, alipay_public_cert: _b, alipay_root_cert: _c, ...publicKeyMode } = raw;
    await storeDirectly(app.app_id, 'alipay', false, { ...publicKeyMode, alipay_public_key: pem(foreign) });
    const wrongKey = await check(c, 'alipay');
    expect(wrongKey.text).toContain('data-check-result="failed"');
    expect(stepOf(wrongKey.text, 'parse')).toBe('ok');
    expect(stepOf(wrongKey.text, 'key_pair')).toBe('ok');
    expect(stepOf(wrongKey.text, 'signed_call')).toBe('failed');
    expect(stepMessage(wrongKey.text, 'signed_call')).toMatch(/did not verify.*alipay_public_key/);
    expect(wrongKey.text).not.toContain(secretLine);

    // Another private key beside the certificates: the key pair step says so; no call is made.
    const otherPrivate = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    await storeDirectly(app.app_id, 'alipay', false, { ...raw, private_key: pem(otherPrivate) });
    const mismatch = await check(c, 'alipay');
    expect(stepOf(mismatch.text, 'parse')).toBe('ok');
    expect(stepOf(mismatch.text, 'key_pair')).toBe('failed');
    expect(stepMessage(mismatch.text, 'key_pair')).toContain('app_cert does not hold the public key of private_key');
    expect(stepOf(mismatch.text, 'signed_call')).toBe('skipped');
    expect(mismatch.text).not.toContain(pem(otherPrivate).split('\n')[2]!);

    // A config that does not parse stops at the first step with the parser's message.
    await storeDirectly(app.app_id, 'alipay', false, { ...raw, app_id: 'x' });
    const broken = await check(c, 'alipay');
    expect(stepOf(broken.text, 'parse')).toBe('failed');
    expect(stepMessage(broken.text, 'parse')).toContain('app_id must be the 16-digit Alipay app id');
    expect(stepOf(broken.text, 'key_pair')).toBe('skipped');
    expect(broken.text).not.toContain(secretLine);
  });

  it('raises the banner on every page for a certificate expiring in 10 days', async () => {
    const shop = await createApp(g.deps.db, { name: 'Expiring Shop' });
    await createConsoleUser(g.deps.db, { email: 'owner@expiring.example', appId: shop.app_id, password: PASSWORD });
    const [root, alipayKeys, appKeys] = [0, 1, 2].map(() => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }));
    const now = Math.floor(Date.now() / 1000);
    const rootDn = [['C', 'CN'], ['O', 'Ant Financial'], ['CN', 'Ant Financial Certification Authority R1']] as const;
    const issue = (cn: string, publicKey: crypto.KeyObject, ca: boolean, notAfter: number) => issueCertificate({
      serial: randomSerial(16), subject: ca ? rootDn : [['C', 'CN'], ['O', 'Expiring Shop'], ['CN', cn]], issuer: rootDn,
      notBefore: now - 86_400, notAfter, publicKey, issuerKey: root!.privateKey, ca,
    });
    const soon = now + 10 * 86_400;
    const c = new ConsoleClient(g.url);
    expect((await c.login('owner@expiring.example', PASSWORD)).status).toBe(303);
    expect((await c.get('/console/payments')).text).not.toContain('data-certificate-alerts');
    // Stored after the banner was computed (and cached): it shows at once all the same.
    await setChannelConfig(g.deps, shop.app_id, 'alipay', true, {
      app_id: '2021000000000042',
      private_key: pem(appKeys!.privateKey),
      app_cert: issue('2021000000000042', appKeys!.publicKey, false, now + 365 * 86_400),
      alipay_public_cert: issue('alipay', alipayKeys!.publicKey, false, soon),
      alipay_root_cert: issue('root', root!.publicKey, true, now + 10 * 365 * 86_400),
    });
    for (const path of ['/console/payments', '/console/keys', '/console/channels']) {
      const page = await c.get(path);
      expect(page.text, path).toContain('data-certificate-alerts');
      expect(page.text).toContain('data-certificate-alert="alipay-live"');
      expect(page.text).toContain('<code>alipay_public_cert</code> expires on');
      expect(page.text).toContain(beijingTime(soon));
    }
    // The owner of the first app, whose certificates are all valid, sees none.
    const other = await loggedIn();
    expect((await other.get('/console/payments')).text).not.toContain('data-certificate-alerts');
  });
});
