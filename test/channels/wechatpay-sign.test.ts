/**
 * WeChat Pay API v3 signatures and encryption against the public test vectors of the official
 * SDKs (wechatpay-go, wechatpay-axios-plugin), plus round trips, the 5-minute window, SIGNTEST
 * probes and both ways of naming the verification key (public key id, certificate serial).
 */
import crypto from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MalformedMessageError, SignatureError } from '../../server/errors.ts';
import {
  appPayParams, appPaySignMessage, buildAuthorization, decryptResource, encryptResource, jsapiPayParams, jsapiPaySignMessage, loadCertificate, loadPrivateKey,
  loadPublicKey, parseAuthorization, requestMessage, responseMessage, signSha256Rsa, signedHeaders, verifyAuthorization,
  verifyAppPaySign, verifyJsapiPaySign, verifySha256Rsa, verifySignedMessage,
} from '../../server/channels/wechatpay/sign.ts';
import { wechatpay, type WechatpayCredentials } from '../../server/channels/wechatpay/index.ts';
import { keyLookup } from '../../server/channels/wechatpay/client.ts';
import { axiosAes, goAes, goNotify, goSigner } from './fixtures/wechatpay/vectors.ts';

const goKey = loadPrivateKey(goSigner.privateKey);
const PUB_KEY_ID = 'PUB_KEY_ID_0114232134912410000000000000';
const pemOf = (k: crypto.KeyObject) => k.export({ format: 'pem', type: k.type === 'private' ? 'pkcs8' : 'spki' }).toString();
const merchantKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const baseConfig = { mchid: '1900000109', appid: 'wx8888888888888888', serial_no: '5157F09EFDC096DE15EBE81A47057A7232F1B8E1', private_key: pemOf(merchantKey), apiv3_key: 'a'.repeat(32) };
/** Credentials that know the Go test key both by a public key id and (through its certificate) by serial. */
const cred: WechatpayCredentials = wechatpay.parseCredentials({
  ...baseConfig,
  wechatpay_public_key: goSigner.publicKey,
  wechatpay_public_key_id: PUB_KEY_ID,
  platform_certificates: [{ certificate: goNotify.certificate }],
});

afterEach(() => {
  vi.useRealTimers();
});

describe('golden vectors', () => {
  it('signs "source" exactly as wechatpay-go does (PKCS#1 v1.5 is deterministic) and verifies it with the public key', () => {
    expect(signSha256Rsa(goSigner.message, goKey)).toBe(goSigner.signature);
    expect(verifySha256Rsa(goSigner.message, goSigner.signature, loadPublicKey(goSigner.publicKey))).toBe(true);
    expect(verifySha256Rsa('wrong source', goSigner.signature, loadPublicKey(goSigner.publicKey))).toBe(false);
    expect(verifySha256Rsa(goSigner.message, 'invalid base64 signature', loadPublicKey(goSigner.publicKey))).toBe(false);
  });

  it('verifies wechatpay-go\'s signed notification by its certificate serial, at its own time', () => {
    const cert = loadCertificate(goNotify.certificate);
    expect(cert.serialNo).toBe(goNotify.serial);
    expect(() => verifySignedMessage(goNotify.headers, goNotify.body, keyLookup(cred), goNotify.now)).not.toThrow();
    expect(() => verifySignedMessage(goNotify.headers, goNotify.body.replace('签约成功', '签约失败'), keyLookup(cred), goNotify.now)).toThrow(SignatureError);
  });

  it('decrypts that notification\'s resource with its 16-byte APIv3 key (AES-128-GCM)', () => {
    const { resource } = JSON.parse(goNotify.body);
    expect(decryptResource(resource, Buffer.from(goNotify.apiV3Key))).toBe(goNotify.plaintext);
  });

  it('parseNotification takes it through verification and decryption, refusing it only for its event type', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(goNotify.now * 1000);
    const goCred = { ...cred, apiV3Key: crypto.createSecretKey(Buffer.from(goNotify.apiV3Key)) };
    const msg = { headers: goNotify.headers, contentType: 'application/json', body: Buffer.from(goNotify.body) };
    await expect(wechatpay.parseNotification(goCred, msg)).rejects.toThrow(/unexpected WeChat Pay event_type PAYSCORE.USER_OPEN_SERVICE/);
    // With the real 32-byte key of our config the tag does not verify.
    await expect(wechatpay.parseNotification(cred, msg)).rejects.toBeInstanceOf(SignatureError);
  });

  it('AES-256-GCM: the wechatpay-axios-plugin vector, both ways', () => {
    const key = Buffer.from(axiosAes.key);
    expect(decryptResource({ ciphertext: axiosAes.ciphertext, nonce: axiosAes.nonce, associated_data: axiosAes.associatedData }, key)).toBe(axiosAes.plaintext);
    expect(encryptResource(axiosAes.plaintext, key, axiosAes.nonce, axiosAes.associatedData)).toBe(axiosAes.ciphertext);
    expect(decryptResource({ ciphertext: axiosAes.ciphertext, nonce: axiosAes.nonce, associated_data: axiosAes.associatedData }, crypto.createSecretKey(key))).toBe(axiosAes.plaintext);
  });

  it('AES-GCM: the wechatpay-go vector has a 16-byte key, so it is AES-128-GCM; the generic helper picks the size', () => {
    expect(decryptResource({ ciphertext: goAes.ciphertext, nonce: goAes.nonce, associated_data: goAes.associatedData }, Buffer.from(goAes.key))).toBe(goAes.plaintext);
    expect(encryptResource(goAes.plaintext, Buffer.from(goAes.key), goAes.nonce, goAes.associatedData)).toBe(goAes.ciphertext);
  });
});

describe('AES-GCM failures', () => {
  const key = Buffer.from(axiosAes.key);
  const good = { ciphertext: axiosAes.ciphertext, nonce: axiosAes.nonce, associated_data: axiosAes.associatedData };

  it('a wrong key, altered bytes, another nonce or AAD fail authentication: SignatureError', () => {
    expect(() => decryptResource(good, Buffer.from('x'.repeat(32)))).toThrow(SignatureError);
    const raw = Buffer.from(good.ciphertext, 'base64');
    raw[0]! ^= 1;
    expect(() => decryptResource({ ...good, ciphertext: raw.toString('base64') }, key)).toThrow(SignatureError);
    expect(() => decryptResource({ ...good, nonce: 'fedcba9876543210' }, key)).toThrow(SignatureError);
    expect(() => decryptResource({ ...good, associated_data: 'transaction' }, key)).toThrow(SignatureError);
  });

  it('bad base64, a ciphertext shorter than its tag or missing fields are MalformedMessageError', () => {
    expect(() => decryptResource({ ...good, ciphertext: 'not base64!' }, key)).toThrow(MalformedMessageError);
    expect(() => decryptResource({ ...good, ciphertext: 'AAAA' }, key)).toThrow(MalformedMessageError);
    expect(() => decryptResource({ ...good, nonce: undefined as unknown as string }, key)).toThrow(MalformedMessageError);
  });
});

describe('request Authorization', () => {
  it('the message is METHOD\\nPATH\\nTS\\nNONCE\\nBODY\\n (a GET ends with an empty body line)', () => {
    expect(requestMessage('get', '/v3/certificates', '1554208460', '593BEC0C930BF1AFEB40B4A08C8FB242', ''))
      .toBe('GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n');
    expect(responseMessage('1554209980', 'c5ac7061fccab6bf3e254dcf98995b8c', '{"a":1}')).toBe('1554209980\nc5ac7061fccab6bf3e254dcf98995b8c\n{"a":1}\n');
  });

  it('builds a header that parses back and verifies; any change to the request breaks it', () => {
    const req = { method: 'POST', pathWithQuery: '/v3/pay/transactions/native', body: '{"amount":{"total":1}}' };
    const header = buildAuthorization({ mchid: '1900000109', serialNo: 'ABC123DEF456', privateKey: goKey, ...req, timestamp: '1554208460', nonce: 'n0nce' });
    expect(header).toBe(`WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="n0nce",signature="${signSha256Rsa(requestMessage('POST', req.pathWithQuery, '1554208460', 'n0nce', req.body), goKey)}",timestamp="1554208460",serial_no="ABC123DEF456"`);
    const auth = parseAuthorization(header)!;
    expect(auth).toMatchObject({ mchid: '1900000109', nonce_str: 'n0nce', timestamp: '1554208460', serial_no: 'ABC123DEF456' });
    const pub = loadPublicKey(goSigner.publicKey);
    expect(verifyAuthorization(auth, req, pub, 1554208460)).toBe('ok');
    expect(verifyAuthorization(auth, { ...req, body: '{"amount":{"total":2}}' }, pub, 1554208460)).toBe('bad_signature');
    expect(verifyAuthorization(auth, { ...req, pathWithQuery: '/v3/pay/transactions/h5' }, pub, 1554208460)).toBe('bad_signature');
    expect(verifyAuthorization(auth, req, pub, 1554208460 + 300)).toBe('expired');
    expect(verifyAuthorization(auth, req, pub, 1554208460 + 299)).toBe('ok');
  });

  it('parses pairs in any order, and refuses other schemes, repeated, unknown or missing pairs', () => {
    expect(parseAuthorization('WECHATPAY2-SHA256-RSA2048 serial_no="S",timestamp="1",signature="x",nonce_str="n", mchid="1"')).toMatchObject({ mchid: '1', serial_no: 'S' });
    expect(parseAuthorization('WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",signature="x",timestamp="1"')).toBeUndefined();
    expect(parseAuthorization('WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="2",nonce_str="n",signature="x",timestamp="1",serial_no="S"')).toBeUndefined();
    expect(parseAuthorization('WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",signature="x",timestamp="1",serial_no="S",extra="e"')).toBeUndefined();
    expect(parseAuthorization('Bearer mchid="1",nonce_str="n",signature="x",timestamp="1",serial_no="S"')).toBeUndefined();
    expect(parseAuthorization(undefined)).toBeUndefined();
  });
});

describe('signed responses and notifies', () => {
  const now = 1_760_000_000;
  const signed = (body: string, serial = PUB_KEY_ID, ts = now, key = goKey) => {
    const headers = signedHeaders(body, key, serial, String(ts), 'nonce123');
    return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  };

  it('round trip in public-key-id mode (Wechatpay-Serial = PUB_KEY_ID_…)', () => {
    expect(() => verifySignedMessage(signed('{"ok":true}'), '{"ok":true}', keyLookup(cred), now)).not.toThrow();
    expect(() => verifySignedMessage(signed('{"ok":true}'), '{"ok":false}', keyLookup(cred), now)).toThrow(/does not verify/);
  });

  it('round trip in certificate-serial mode; an expired certificate no longer counts', () => {
    expect(() => verifySignedMessage(signed('{}', goNotify.serial), '{}', keyLookup(cred), now)).not.toThrow();
    const after = Date.parse('2031-04-26T00:00:00Z') / 1000;
    expect(() => verifySignedMessage(signed('{}', goNotify.serial, after), '{}', keyLookup(cred), after)).toThrow(/names no usable key/);
    // Still fine by its public key id, which has no expiry.
    expect(() => verifySignedMessage(signed('{}', PUB_KEY_ID, after), '{}', keyLookup(cred), after)).not.toThrow();
  });

  it('a serial the config does not know, or another key behind a known serial, is refused', () => {
    expect(() => verifySignedMessage(signed('{}', 'PUB_KEY_ID_0999'), '{}', keyLookup(cred), now)).toThrow(/names no usable key/);
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect(() => verifySignedMessage(signed('{}', PUB_KEY_ID, now, other), '{}', keyLookup(cred), now)).toThrow(/does not verify/);
  });

  it('the 5-minute window: 4:59 either way is fine, 5:00 is refused', () => {
    for (const skew of [-299, 299]) expect(() => verifySignedMessage(signed('{}', PUB_KEY_ID, now + skew), '{}', keyLookup(cred), now)).not.toThrow();
    for (const skew of [-300, 300]) expect(() => verifySignedMessage(signed('{}', PUB_KEY_ID, now + skew), '{}', keyLookup(cred), now)).toThrow(/5 minutes/);
  });

  it('a WECHATPAY/SIGNTEST/ probe is refused, whatever else it carries', () => {
    const headers = { ...signed('{}'), 'wechatpay-signature': 'WECHATPAY/SIGNTEST/wGqKtvYOzVOwbtNFNFpqxC/4rXM0rOkGfh8VGEB8pTsvBmqlwNh8CRNIdqQ9yp0Wh+Ww1mvOT7JcLMzjG2VV1VRmWqv0m2u49eHN1Hab0brUAOU/vQFCr5nrXLVFiMRbGV5aT7lbgu5WwI0FNPTxb2TyGQIy6k1/UcqrqLJ1vsl3n1Z64PrGaJPgWIZGNBOd3J/G5WkMjqCIZ7ZNDGJgNgl1ZnZknNdY+dUZdhL03u8GWDvKPkYf2M3ZZpfUgV/hyX2NNy9w0xKEq8RcyRUDy0dhvk7z3IBUpc2IVC9sZjqVK0jwXOzPjKb2U1+IG8TeqNQlnjAaVYUBRrRA7w8wbg==' };
    expect(() => verifySignedMessage(headers, '{}', keyLookup(cred), now)).toThrow(/SIGNTEST/);
  });

  it('each missing header is named', () => {
    for (const name of ['Wechatpay-Timestamp', 'Wechatpay-Nonce', 'Wechatpay-Signature', 'Wechatpay-Serial']) {
      const headers: Record<string, string | undefined> = { ...signed('{}') };
      delete headers[name.toLowerCase()];
      expect(() => verifySignedMessage(headers, '{}', keyLookup(cred), now)).toThrow(new RegExp(name));
    }
  });
});

describe('JSAPI paySign', () => {
  it('signs appId\\ntimeStamp\\nnonceStr\\npackage\\n and verifies; a changed field fails', () => {
    const p = jsapiPayParams('wx8888888888888888', 'wx201410272009395522657a690389285100', goKey, '1414561699', '5K8264ILTKCH16CQ2502SI8ZNMTM67VS');
    expect(p).toMatchObject({ appId: 'wx8888888888888888', timeStamp: '1414561699', nonceStr: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS', package: 'prepay_id=wx201410272009395522657a690389285100', signType: 'RSA' });
    expect(p.paySign).toBe(signSha256Rsa(jsapiPaySignMessage(p.appId, p.timeStamp, p.nonceStr, p.package), goKey));
    expect(jsapiPaySignMessage('a', '1', 'n', 'prepay_id=x')).toBe('a\n1\nn\nprepay_id=x\n');
    const pub = loadPublicKey(goSigner.publicKey);
    expect(verifyJsapiPaySign(p, pub)).toBe(true);
    expect(verifyJsapiPaySign({ ...p, package: 'prepay_id=wx2' }, pub)).toBe(false);
    expect(verifyJsapiPaySign({ ...p, signType: 'MD5' } as never, pub)).toBe(false);
  });
});

describe('keys', () => {
  it('loads PKCS#8 and PKCS#1 private keys, SPKI public keys and a bare base64 body', () => {
    const pkcs1 = merchantKey.export({ format: 'pem', type: 'pkcs1' }).toString();
    expect(loadPrivateKey(pkcs1).type).toBe('private');
    const body = goSigner.publicKey.replace(/-----[^-]+-----|\s/g, '');
    expect(loadPublicKey(body).equals(loadPublicKey(goSigner.publicKey))).toBe(true);
  });

  it('refuses a private key where a public one belongs, and short keys', () => {
    expect(() => loadPublicKey(goSigner.privateKey)).toThrow();
    const short = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    expect(() => loadPrivateKey(pemOf(short))).toThrow(/2048/);
  });
});

describe('APP PayReq sign (v3)', () => {
  it('signs the four lines appid\\ntimestamp\\nnoncestr\\nprepayid\\n (the last ending in \\n too) with the merchant key; a changed field fails', () => {
    const p = appPayParams('wxd678efh567hg6787', '1900000109', 'wx201410272009395522657a690389285100', goKey, '1414561699', '5K8264ILTKCH16CQ2502SI8ZNMTM67VS');
    expect(appPaySignMessage('wxd678efh567hg6787', '1414561699', '5K8264ILTKCH16CQ2502SI8ZNMTM67VS', 'wx201410272009395522657a690389285100'))
      .toBe('wxd678efh567hg6787\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nwx201410272009395522657a690389285100\n');
    expect(p).toEqual({
      appid: 'wxd678efh567hg6787', partnerid: '1900000109', prepayid: 'wx201410272009395522657a690389285100', package: 'Sign=WXPay',
      noncestr: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS', timestamp: '1414561699',
      sign: signSha256Rsa('wxd678efh567hg6787\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nwx201410272009395522657a690389285100\n', goKey),
    });
    const pub = loadPublicKey(goSigner.publicKey);
    expect(verifyAppPaySign(p, pub)).toBe(true);
    expect(crypto.createVerify('RSA-SHA256').update(appPaySignMessage(p.appid, p.timestamp, p.noncestr, p.prepayid)).verify(pub, p.sign, 'base64')).toBe(true);
    for (const field of ['appid', 'timestamp', 'noncestr', 'prepayid'] as const) expect(verifyAppPaySign({ ...p, [field]: `${p[field]}1` }, pub), field).toBe(false);
    expect(verifyAppPaySign({ ...p, sign: '' }, pub)).toBe(false);
    // Defaults: a 10-digit seconds timestamp and a nonce of at most 32 characters.
    const fresh = appPayParams('wxd678efh567hg6787', '1900000109', 'wx1', goKey);
    expect(fresh.timestamp).toMatch(/^\d{10}$/);
    expect(fresh.noncestr.length).toBeGreaterThan(0);
    expect(fresh.noncestr.length).toBeLessThanOrEqual(32);
  });

  it('needs app_appid for wechat_app: without it the config is refused for that code only', async () => {
    expect(cred.appAppid).toBeUndefined();
    expect(wechatpay.appIdOf(cred, 'wechat_app')).toBe(cred.appid);
    await expect(wechatpay.createPayment(cred, {
      channel: 'wechat_app', orderNo: 'cs_app_1', amount: 100, currency: 'CNY', subject: 's', expiresAt: Math.floor(Date.now() / 1000) + 600,
      notifyUrl: 'https://gw.example/notify/wechatpay/app_1', returnUrl: 'https://gw.example/pay/t/return',
    })).rejects.toThrow(/app_appid .* is required for wechat_app/);
    const withApp = wechatpay.parseCredentials({ ...baseConfig, app_appid: 'wx1234567890abcdef', wechatpay_public_key: goSigner.publicKey, wechatpay_public_key_id: PUB_KEY_ID });
    expect(withApp.appAppid).toBe('wx1234567890abcdef');
    expect(wechatpay.appIdOf(withApp, 'wechat_app')).toBe('wx1234567890abcdef');
    expect(wechatpay.appIdOf(withApp, 'wechat_jsapi')).toBe(baseConfig.appid);
    expect(wechatpay.appIdOf(withApp)).toBe(baseConfig.appid);
    expect(wechatpay.credentialKeys).toContain('app_appid');
    expect(() => wechatpay.parseCredentials({ ...baseConfig, app_appid: 'not-an-appid', wechatpay_public_key: goSigner.publicKey, wechatpay_public_key_id: PUB_KEY_ID }))
      .toThrow(/app_appid must be the Open Platform mobile-app AppID/);
  });
});
