/**
 * WeChat cash red packets (API v2) end to end: the adapter over real HTTPS with its client
 * certificate, against the simulator on the test server's own port (TLS told apart from HTTP
 * by the first byte), with an in-memory database.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandboxServer } from './sandbox-server.ts';
import { wechatpay, type WechatpayCredentials } from '../../server/channels/wechatpay/index.ts';
import { wechatpayRedPackets as rp } from '../../server/channels/wechatpay/redpack.ts';
import { buildXml, parseXml, v2Sign, v2SignString } from '../../server/channels/wechatpay/v2.ts';
import { acceptWechatpaySandboxTls, createWechatpaySandboxRouter, redPacketPaidCount, wechatpaySandbox } from '../../server/sandbox/wechatpay/index.ts';
import { NOT_FOUND_MS, SENDING_MS, SYSTEMERROR_MARK, PROCESSING_MARK } from '../../server/sandbox/wechatpay/redpack.ts';
import { issueCertificate, randomSerial } from '../../server/sandbox/unionpay/x509.ts';
import type { RedPacketRequest } from '../../server/channels/payouts.ts';
import type { SandboxDeps } from '../../server/sandbox/types.ts';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError } from '../../server/errors.ts';
import { loadConfig } from '../../server/config.ts';
import { createLogger } from '../../server/log.ts';
import { startGateway } from '../../server/index.ts';

let world: Awaited<ReturnType<typeof startSandboxServer>>;
let raw: Record<string, any>;
let cred: WechatpayCredentials;
let seq = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function provision(deps: SandboxDeps = world.deps) {
  const r = (await (await wechatpaySandbox.draftMerchant(deps)).register(deps.db)) as Record<string, any>;
  return { raw: r, cred: wechatpay.parseCredentials(r) };
}

function packet(over: Partial<RedPacketRequest> = {}, c: WechatpayCredentials = cred): RedPacketRequest {
  seq += 1;
  return {
    packetNo: `${c.mchid}${String(Date.now()).slice(-8)}${String(seq).padStart(6, '0')}`.slice(0, 28),
    amount: 888, currency: 'CNY',
    recipient: { type: 'wechat_openid', account: `oSandboxUser${String(seq).padStart(6, '0')}abcdefghij` },
    senderName: '测试商户', wishing: '恭喜发财', actName: '新年红包', remark: '快来领取', clientIp: '203.0.113.7',
    createdAt: Math.floor(Date.now() / 1000),
    ...over,
  };
}

/** A raw POST to the simulator's v2 URL with the given TLS options; answers the parsed XML. */
function postRaw(url: string, body: string, tlsOpts: https.RequestOptions): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', agent: false, ...tlsOpts, headers: { 'content-type': 'application/xml' } }, (res) => {
      let t = '';
      res.on('data', (d) => (t += d));
      res.on('end', () => resolve(parseXml(t)));
    });
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  world = await startSandboxServer();
  world.app.use('/sandbox/wechatpay', createWechatpaySandboxRouter(world.deps));
  acceptWechatpaySandboxTls(world.server, () => world.deps);
  ({ raw, cred } = await provision());
});

afterAll(async () => {
  world.server.closeAllConnections();
  await new Promise((r) => world.server.close(r));
  await world.db.destroy();
});

describe('v2 wire', () => {
  it('signs as WeChat\'s documented example (MD5, sorted, &key=, upper hex)', () => {
    const fields = { appid: 'wxd930ea5d5a258f4f', mch_id: '10000100', device_info: '1000', body: 'test', nonce_str: 'ibuaiVcKdpRxkhJA', empty: '' };
    const key = '192006250b4c09247ec02edce69f6a2d';
    expect(v2SignString(fields, key)).toBe('appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA&key=192006250b4c09247ec02edce69f6a2d');
    expect(v2Sign(fields, key)).toBe('9A0A8659F005D6984697E2CA0A9CF3B7');
  });

  it('builds and parses flat XML with CDATA and a nested list', () => {
    const xml = buildXml({ a: 'x]]>y', b: 12, c: '' }, { hblist: { row: 'hbinfo', rows: [{ openid: 'o1', amount: '100' }] } });
    expect(xml).not.toContain('<c>');
    expect(parseXml(xml)).toEqual({ a: 'x]]>y', b: '12', hblist: [{ openid: 'o1', amount: '100' }] });
    expect(parseXml('<?xml version="1.0"?><xml><t>a &amp; b</t></xml>')).toEqual({ t: 'a & b' });
  });

  it('refuses a DOCTYPE, an entity declaration and undeclared entities', () => {
    expect(() => parseXml('<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><a>&x;</a></xml>')).toThrow(MalformedMessageError);
    expect(() => parseXml('<xml><!ENTITY x "y"><a>1</a></xml>')).toThrow(/declaration/);
    expect(() => parseXml('<xml><a>&x;</a></xml>')).toThrow(/undeclared entity/);
    expect(() => parseXml('<xml><a>1</b></xml>')).toThrow(MalformedMessageError);
  });

  it('the simulator answers a DOCTYPE body with XML_ERROR', async () => {
    const body = '<!DOCTYPE xml [<!ENTITY e "boom">]><xml><mch_id>&e;</mch_id></xml>';
    const a = await postRaw(`${raw.v2_base_url}/mmpaymkttransfers/sendredpack`, body, { key: raw.private_key, cert: raw.apiclient_cert, ca: raw.v2_ca_certificate });
    expect(a.err_code).toBe('XML_ERROR');
  });
});

describe('credentials', () => {
  it('provisioning hands out the v2 key, the apiclient certificate of the key, and the TLS URL on the same port', () => {
    expect(raw.api_v2_key).toMatch(/^[0-9A-Za-z]{32}$/);
    expect(raw.v2_base_url).toBe(`${world.base.replace('http:', 'https:')}/sandbox/wechatpay/v2`);
    const cert = new crypto.X509Certificate(raw.apiclient_cert);
    expect(cert.subject).toContain(`CN=${raw.mchid}`);
    expect(cert.serialNumber.toUpperCase()).toBe(raw.serial_no.replace(/^0+/, ''));
    expect(cert.verify(new crypto.X509Certificate(raw.v2_ca_certificate).publicKey)).toBe(true);
  });

  it('never prints the v2 key', () => {
    const shown = JSON.stringify(cred) + String(cred.v2?.apiKey);
    expect(shown).not.toContain(raw.api_v2_key);
  });

  it('refuses a certificate of another key, one of key or certificate alone, and an extra CA for production', async () => {
    const other = await provision();
    expect(() => wechatpay.parseCredentials({ ...raw, apiclient_cert: other.raw.apiclient_cert })).toThrow(/apiclient_cert is not the certificate of private_key/);
    expect(() => wechatpay.parseCredentials({ ...raw, apiclient_cert: undefined })).toThrow(/apiclient_cert is required with the other/);
    expect(() => wechatpay.parseCredentials({ ...raw, api_v2_key: 'short' })).toThrow(/api_v2_key/);
    expect(() => wechatpay.parseCredentials({ ...raw, v2_base_url: 'https://api.mch.weixin.qq.com' })).toThrow(/v2_ca_certificate is accepted only with a non-production/);
    expect(() => wechatpay.parseCredentials({ ...raw, v2_base_url: raw.v2_base_url.replace('https:', 'http:') })).toThrow(/v2_base_url/);
  });

  it('without api_v2_key and apiclient_cert, red packets are a configuration error', async () => {
    const { api_v2_key, apiclient_cert, v2_base_url, v2_ca_certificate, ...v3only } = raw;
    const c = wechatpay.parseCredentials(v3only);
    expect(c.v2).toBeUndefined();
    await expect(rp.send(c, packet())).rejects.toThrow(ChannelConfigError);
    await expect(rp.query(c, packet())).rejects.toThrow(/api_v2_key .* apiclient_cert/);
  });
});

describe('validate', () => {
  const base = () => { const { packetNo, createdAt, clientIp, ...r } = packet(); return r; };
  it('accepts a plain packet', () => {
    expect(rp.validate(base())).toBeNull();
  });
  it('names what WeChat would refuse', () => {
    expect(rp.validate({ ...base(), recipient: { type: 'alipay_user_id', account: '2088102146225135' } })?.param).toBe('recipient.type');
    expect(rp.validate({ ...base(), recipient: { type: 'wechat_openid', account: 'not an openid!' } })?.param).toBe('recipient.account');
    expect(rp.validate({ ...base(), amount: 99 })).toEqual({ param: 'scene_id', message: expect.stringContaining('required') });
    expect(rp.validate({ ...base(), amount: 20_001 })?.param).toBe('scene_id');
    expect(rp.validate({ ...base(), amount: 50, sceneId: 'PRODUCT_1' })).toBeNull();
    expect(rp.validate({ ...base(), amount: 29, sceneId: 'PRODUCT_1' })?.param).toBe('amount');
    expect(rp.validate({ ...base(), amount: 12.5 })?.param).toBe('amount');
    expect(rp.validate({ ...base(), sceneId: 'PRODUCT_9' })?.param).toBe('scene_id');
    expect(rp.validate({ ...base(), currency: 'USD' })?.param).toBe('currency');
    // 11 Chinese characters are 33 bytes: over send_name's 32.
    expect(rp.validate({ ...base(), senderName: '一二三四五六七八九十一' })).toEqual({ param: 'sender_name', message: expect.stringContaining('32 bytes') });
    expect(rp.validate({ ...base(), senderName: '一二三四五六七八九十' })).toBeNull();
    expect(rp.validate({ ...base(), wishing: '' })?.param).toBe('wishing');
    expect(rp.validate({ ...base(), actName: 'a'.repeat(33) })?.param).toBe('act_name');
    expect(rp.validate({ ...base(), remark: '备'.repeat(86) })?.param).toBe('remark');
  });
});

describe('send and query over mutual TLS', () => {
  it('send → sent → the recipient opens it → received', async () => {
    const req = packet();
    const sent = await rp.send(cred, req);
    expect(sent.status).toBe('sent');
    expect(sent.channelPacketNo).toMatch(/^\d{28}$/);
    await sleep(SENDING_MS + 50);
    expect(await rp.query(cred, req)).toEqual({ status: 'sent', channelPacketNo: sent.channelPacketNo });
    const before = Math.floor(Date.now() / 1000);
    await wechatpaySandbox.redPacketRecipient!(world.deps, { merchantId: cred.mchid, packetNo: req.packetNo, outcome: 'open' });
    const got = await rp.query(cred, req);
    expect(got.status).toBe('received');
    expect(got.receivedAt).toBeGreaterThanOrEqual(before - 1);
    expect(got.receivedAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(await redPacketPaidCount(world.db, cred.mchid, req.packetNo)).toBe(1);
    // Opened once: it cannot also expire.
    await expect(wechatpaySandbox.redPacketRecipient!(world.deps, { merchantId: cred.mchid, packetNo: req.packetNo, outcome: 'expire' })).rejects.toThrow(/RECEIVED/);
  });

  it('left unopened for 24 h → refunded with refundedAt', async () => {
    const req = packet();
    expect((await rp.send(cred, req)).status).toBe('sent');
    await wechatpaySandbox.redPacketRecipient!(world.deps, { merchantId: cred.mchid, packetNo: req.packetNo, outcome: 'expire' });
    const r = await rp.query(cred, req);
    expect(r.status).toBe('refunded');
    expect(r.refundedAt).toBeGreaterThan(Math.floor(Date.now() / 1000) - 5);
  });

  it('right after the send the packet is not_found, then sending, then sent (never failed)', async () => {
    const req = packet();
    await rp.send(cred, req);
    expect((await rp.query(cred, req)).status).toBe('not_found');
    await sleep(NOT_FOUND_MS + 30);
    expect((await rp.query(cred, req)).status).toBe('sending');
    await sleep(SENDING_MS - NOT_FOUND_MS + 30);
    expect((await rp.query(cred, req)).status).toBe('sent');
    expect((await rp.query(cred, packet())).status).toBe('not_found');
  });

  it('a request without a client certificate, or over plain HTTP, is refused with CA_ERROR; a foreign certificate too', async () => {
    const body = buildXml({ mch_id: cred.mchid, nonce_str: 'n', mch_billno: 'x1', appid: cred.appid, bill_type: 'MCHT' });
    const url = `${raw.v2_base_url}/mmpaymkttransfers/gethbinfo`;
    expect((await postRaw(url, body, { ca: raw.v2_ca_certificate })).err_code).toBe('CA_ERROR');
    const plain = await fetch(url.replace('https:', 'http:'), { method: 'POST', body });
    expect(parseXml(await plain.text()).err_code).toBe('CA_ERROR');

    // A self-made certificate for the same key, CN = the mchid, but not issued by WeChat Pay.
    const now = Math.floor(Date.now() / 1000);
    const dn = [['CN', cred.mchid]] as const;
    const forged = issueCertificate({ serial: randomSerial(), subject: dn, issuer: dn, notBefore: now - 60, notAfter: now + 3600, publicKey: crypto.createPublicKey(cred.privateKey), issuerKey: cred.privateKey, ca: false });
    expect((await postRaw(url, body, { key: raw.private_key, cert: forged, ca: raw.v2_ca_certificate })).err_code).toBe('CA_ERROR');

    // Another merchant's genuine certificate does not speak for this mch_id.
    const other = await provision();
    const cross = wechatpay.parseCredentials({ ...other.raw, mchid: cred.mchid, appid: cred.appid });
    await expect(rp.send(cross, packet())).rejects.toThrow(/CA_ERROR/);
  });

  it('the wrong v2 key gets SIGN_ERROR, thrown as ChannelConfigError: nothing was sent, and only fixing the key helps', async () => {
    const wrong = wechatpay.parseCredentials({ ...raw, api_v2_key: 'A'.repeat(32) });
    const req = packet();
    await expect(rp.send(wrong, req)).rejects.toThrow(ChannelConfigError);
    await expect(rp.send(wrong, req)).rejects.toThrow(/SIGN_ERROR/);
    await expect(rp.query(wrong, req)).rejects.toThrow(ChannelConfigError);
    expect(await redPacketPaidCount(world.db, cred.mchid, req.packetNo)).toBe(0);
    // The same packet then goes out once the key is right.
    expect((await rp.send(cred, req)).status).toBe('sent');
  });

  it('SYSTEMERROR after sending is ChannelUnavailable; the resend under the same number is sent, and paid once', async () => {
    const req = packet({ wishing: `恭喜发财 ${SYSTEMERROR_MARK}` });
    await expect(rp.send(cred, req)).rejects.toThrow(ChannelUnavailable);
    const again = await rp.send(cred, req);
    expect(again.status).toBe('sent');
    const third = await rp.send(cred, req);
    expect(third.channelPacketNo).toBe(again.channelPacketNo);
    expect(await redPacketPaidCount(world.db, cred.mchid, req.packetNo)).toBe(1);
  });

  it('PROCESSING is sending', async () => {
    const req = packet({ wishing: `恭喜发财 ${PROCESSING_MARK}` });
    expect(await rp.send(cred, req)).toEqual({ status: 'sending' });
    expect(await redPacketPaidCount(world.db, cred.mchid, req.packetNo)).toBe(1);
  });

  it('a changed body under a used number is refused (FATAL_ERROR) and pays nothing more', async () => {
    const req = packet();
    const first = await rp.send(cred, req);
    expect(first.status).toBe('sent');
    const changed = rp.send(cred, { ...req, amount: req.amount + 1 });
    await expect(changed).rejects.toThrow(ChannelRequestError);
    await expect(rp.send(cred, { ...req, recipient: { type: 'wechat_openid', account: 'oSomeoneElse000000000000000' } })).rejects.toThrow(/FATAL_ERROR/);
    expect(await redPacketPaidCount(world.db, cred.mchid, req.packetNo)).toBe(1);
    expect((await rp.send(cred, req)).channelPacketNo).toBe(first.channelPacketNo);
  });
});

describe('limits at the simulator', () => {
  it('amount outside 1–200 yuan without scene_id is MONEY_LIMIT; with scene_id 0.3 yuan goes', async () => {
    const low = await rp.send(cred, packet({ amount: 99 }));
    expect(low).toMatchObject({ status: 'failed', failureCode: 'MONEY_LIMIT' });
    expect((await rp.send(cred, packet({ amount: 30, sceneId: 'PRODUCT_1' }))).status).toBe('sent');
    expect(await rp.send(cred, packet({ amount: 49_901, sceneId: 'PRODUCT_2' }))).toMatchObject({ status: 'failed', failureCode: 'MONEY_LIMIT' });
  });

  it('NOTENOUGH (amount 6601) is failed and pays nothing', async () => {
    const req = packet({ amount: 6601 });
    expect(await rp.send(cred, req)).toMatchObject({ status: 'failed', failureCode: 'NOTENOUGH', failureMessage: expect.stringContaining('余额不足') });
    expect(await redPacketPaidCount(world.db, cred.mchid, req.packetNo)).toBe(0);
  });

  it('the 11th packet to one user in a day is SENDNUMLIMIT', async () => {
    const { cred: c } = await provision();
    const recipient = { type: 'wechat_openid' as const, account: 'oDailyLimitUser000000000000' };
    for (let i = 0; i < 10; i++) expect((await rp.send(c, packet({ recipient }, c))).status).toBe('sent');
    expect(await rp.send(c, packet({ recipient }, c))).toMatchObject({ status: 'failed', failureCode: 'SENDNUMLIMIT' });
    // Another user of the same merchant still gets one.
    expect((await rp.send(c, packet({}, c))).status).toBe('sent');
  });

  it('the wxappid must be the Official Account AppID, not the mobile app\'s', async () => {
    const asApp = { ...cred, appid: cred.appAppid! };
    await expect(rp.send(asApp, packet())).rejects.toThrow(ChannelConfigError);
    await expect(rp.send(asApp, packet())).rejects.toThrow(/ILLEGAL_APPID/);
  });
});

describe('restart', () => {
  it('the stored v2 URL answers on the same port after the gateway restarts', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-redpack-'));
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const config = loadConfig({}, {
      port, databaseUrl: `sqlite:${path.join(dir, 'gw.db')}`, masterKey: crypto.randomBytes(32).toString('base64'), dataDir: dir,
      publicUrl: `http://127.0.0.1:${port}`, logLevel: 'silent', workers: 'false', demo: 'false', sandbox: 'true',
    });
    const logger = createLogger('silent');
    const first = await startGateway(config, logger);
    const sandboxDeps = { db: first.deps.db, publicUrl: config.publicUrl, masterKey: config.masterKeyBytes, logger };
    const m = await provision(sandboxDeps);
    const req = packet({}, m.cred);
    const sent = await rp.send(m.cred, req);
    expect(sent.status).toBe('sent');
    await first.stop();

    const second = await startGateway(config, logger);
    try {
      await sleep(SENDING_MS);
      // The same stored credentials, the same URL: the new process serves it.
      expect(await rp.query(wechatpay.parseCredentials(m.raw), req)).toEqual({ status: 'sent', channelPacketNo: sent.channelPacketNo });
    } finally {
      await second.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
