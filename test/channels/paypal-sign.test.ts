import crypto from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChannelUnavailable, MalformedMessageError, SignatureError } from '../../server/errors.ts';
import {
  certUrlAllowed, certificatesOf, checkChain, clearCertificateCache, crc32, crc32ByTable, postbackBody, signTransmission, signedMessage, verifyTransmission, type CertRule,
} from '../../server/channels/paypal/sign.ts';
import { buildCertificate } from '../../server/sandbox/paypal/cert.ts';

const key = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const cert = buildCertificate({ subjectKey: key, subject: { cn: 'sandbox' } });
let server: http.Server;
let origin: string;
let fetches = 0;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    fetches++;
    if (req.url === '/pp/v1/notifications/certs/CERT-1') res.end(cert);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const rule = (): CertRule => ({ kind: 'origin', origin, pathPrefix: '/pp/' });
const WEBHOOK_ID = '8PT597110X687430LKGECATA';

function delivery(body: Buffer, opts: { time?: string; webhookId?: string; certUrl?: string; signer?: crypto.KeyObject } = {}) {
  const id = crypto.randomUUID();
  const time = opts.time ?? new Date().toISOString();
  return {
    'paypal-transmission-id': id,
    'paypal-transmission-time': time,
    'paypal-transmission-sig': signTransmission(opts.signer ?? key, id, time, opts.webhookId ?? WEBHOOK_ID, body),
    'paypal-cert-url': opts.certUrl ?? `${origin}/pp/v1/notifications/certs/CERT-1`,
    'paypal-auth-algo': 'SHA256withRSA',
  };
}

describe('paypal sign: crc32', () => {
  it('is the unsigned IEEE CRC-32 of the bytes (native and table agree)', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    const body = Buffer.from('{"summary":"付款完成 — café"}', 'utf8');
    expect(crc32(body)).toBe(crc32ByTable(body));
    expect(crc32(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toBeGreaterThan(0);
  });
  it('the message is id|time|webhook_id|crc32 in decimal', () => {
    expect(signedMessage('t1', '2026-01-01T00:00:00Z', 'WH', Buffer.from('123456789'))).toBe(`t1|2026-01-01T00:00:00Z|WH|${0xcbf43926}`);
  });
});

describe('paypal sign: offline verification', () => {
  const body = Buffer.from('{"id":"WH-1","event_version":"1.0","summary":"Zahlung abgeschlossen: 12,00 € — 付款","resource":{}}', 'utf8');

  it('verifies a genuine delivery with a non-ASCII body (crc32 over the bytes, not UTF-16 units)', async () => {
    await expect(verifyTransmission({ headers: delivery(body), body, webhookId: WEBHOOK_ID, certRule: rule() })).resolves.toMatchObject({ authAlgo: 'SHA256withRSA' });
    // crc32 over char codes differs for this body: a signature made that way does not verify.
    const units = Buffer.from([...body.toString('utf8')].map((c) => c.charCodeAt(0) & 0xff));
    expect(crc32(units)).not.toBe(crc32(body));
  });

  it('caches the certificate by URL', async () => {
    clearCertificateCache();
    const before = fetches;
    await verifyTransmission({ headers: delivery(body), body, webhookId: WEBHOOK_ID, certRule: rule() });
    await verifyTransmission({ headers: delivery(body), body, webhookId: WEBHOOK_ID, certRule: rule() });
    expect(fetches - before).toBe(1);
  });

  it('a re-serialised body fails', async () => {
    const h = delivery(body);
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(body.toString('utf8'))).replace('"1.0"', '1.0'));
    await expect(verifyTransmission({ headers: h, body: reserialised, webhookId: WEBHOOK_ID, certRule: rule() })).rejects.toThrow(SignatureError);
    await expect(verifyTransmission({ headers: h, body: Buffer.from(JSON.stringify(JSON.parse(body.toString('utf8')), null, 2)), webhookId: WEBHOOK_ID, certRule: rule() })).rejects.toThrow(SignatureError);
  });

  it('another webhook id, another key, another algorithm: refused', async () => {
    await expect(verifyTransmission({ headers: delivery(body, { webhookId: 'OTHER' }), body, webhookId: WEBHOOK_ID, certRule: rule() })).rejects.toThrow(SignatureError);
    const stranger = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    await expect(verifyTransmission({ headers: delivery(body, { signer: stranger }), body, webhookId: WEBHOOK_ID, certRule: rule() })).rejects.toThrow(SignatureError);
    await expect(verifyTransmission({ headers: { ...delivery(body), 'paypal-auth-algo': 'SHA1withRSA' }, body, webhookId: WEBHOOK_ID, certRule: rule() })).rejects.toThrow(/SHA256withRSA/);
  });

  it('an old (or future) transmission time is refused: ±3 days', async () => {
    const old = new Date(Date.now() - 3 * 86400_000 - 60_000).toISOString();
    await expect(verifyTransmission({ headers: delivery(body, { time: old }), body, webhookId: WEBHOOK_ID, certRule: rule() })).rejects.toThrow(/3 days/);
    const future = new Date(Date.now() + 4 * 86400_000).toISOString();
    await expect(verifyTransmission({ headers: delivery(body, { time: future }), body, webhookId: WEBHOOK_ID, certRule: rule() })).rejects.toThrow(/3 days/);
    const recent = new Date(Date.now() - 2 * 86400_000).toISOString();
    await expect(verifyTransmission({ headers: delivery(body, { time: recent }), body, webhookId: WEBHOOK_ID, certRule: rule() })).resolves.toBeTruthy();
  });

  it('a certificate on a host that is not allowed is refused before anything is fetched', async () => {
    const before = fetches;
    await expect(verifyTransmission({ headers: delivery(body, { certUrl: 'http://evil.example/pp/cert' }), body, webhookId: WEBHOOK_ID, certRule: rule() })).rejects.toThrow(/allowed host/);
    await expect(verifyTransmission({ headers: delivery(body, { certUrl: `${origin}/elsewhere/cert` }), body, webhookId: WEBHOOK_ID, certRule: rule() })).rejects.toThrow(/allowed host/);
    expect(fetches).toBe(before);
  });

  it('a missing header is malformed; an unreachable certificate is a fault (PayPal retries)', async () => {
    const { 'paypal-cert-url': _c, ...rest } = delivery(body);
    await expect(verifyTransmission({ headers: rest, body, webhookId: WEBHOOK_ID, certRule: rule() })).rejects.toThrow(MalformedMessageError);
    await expect(verifyTransmission({ headers: delivery(body, { certUrl: `${origin}/pp/missing` }), body, webhookId: WEBHOOK_ID, certRule: rule() })).rejects.toThrow(ChannelUnavailable);
  });
});

describe('paypal sign: live rules', () => {
  it('cert URLs against PayPal: https on *.paypal.com only', () => {
    const live: CertRule = { kind: 'paypal' };
    expect(certUrlAllowed(live, 'https://api.paypal.com/v1/notifications/certs/CERT-360caa42')).toBe(true);
    expect(certUrlAllowed(live, 'https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1')).toBe(true);
    expect(certUrlAllowed(live, 'http://api.paypal.com/v1/notifications/certs/CERT-1')).toBe(false);
    expect(certUrlAllowed(live, 'https://paypal.com.evil.example/cert')).toBe(false);
    expect(certUrlAllowed(live, 'https://evilpaypal.com/cert')).toBe(false);
    expect(certUrlAllowed(live, 'https://user@api.paypal.com/cert')).toBe(false);
    expect(certUrlAllowed(live, 'https://api.paypal.com:8443/cert')).toBe(false);
  });

  it('the certificate must chain to a trusted root and be issued to a paypal.com name', () => {
    const caKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const ca = certificatesOf(buildCertificate({ subjectKey: caKey, subject: { cn: 'Test Root CA' }, ca: true }));
    const leaf = (cn: string, signer = caKey) => certificatesOf(buildCertificate({ subjectKey: key, subject: { cn }, issuer: { cn: 'Test Root CA', key: signer } }));
    expect(() => checkChain(leaf('messageverificationcerts.paypal.com'), new Date(), ca)).not.toThrow();
    expect(() => checkChain(leaf('messageverificationcerts.paypal.com'), new Date())).toThrow(/trusted root/);
    expect(() => checkChain(leaf('evil.example'), new Date(), ca)).toThrow(/paypal.com/);
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect(() => checkChain(leaf('messageverificationcerts.paypal.com', other), new Date(), ca)).toThrow(/trusted root/);
    expect(() => checkChain(leaf('messageverificationcerts.paypal.com'), new Date(Date.now() + 10 * 365 * 86400_000), ca)).toThrow(/validity/);
  });

  it('the postback body splices the raw event in', () => {
    const raw = '{"id":"WH-1","event_version":"1.0"}';
    const out = postbackBody({ id: 't', time: 'x', sig: 's', certUrl: 'c', authAlgo: 'SHA256withRSA' }, 'WH', raw);
    expect(out.endsWith(`"webhook_event":${raw}}`)).toBe(true);
    expect(JSON.parse(out).webhook_id).toBe('WH');
  });
});
