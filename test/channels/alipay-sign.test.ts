import { describe, expect, it } from 'vitest';
import { AlipaySdk } from 'alipay-sdk';
import { alipay } from '../../server/channels/alipay/index.ts';
import { parseOrderString } from '../../server/sandbox/alipay/wallet.ts';
import {
  alipayJson, loadPrivateKey, loadPublicKey, notifySignContent, readSignedResponse, requestSignContent, signNotify,
  signRequest, signResponse, signRsa2, verifyNotify, verifyRequest, verifyResponse,
} from '../../server/channels/alipay/sign.ts';
import {
  FIXTURE_APP_ID, alipayPrivateKey, alipayPublicBase64, alipayPublicKey, alipayPublicPem, appPrivateBase64, appPrivateKey,
  appPrivatePem, appPrivatePkcs1Pem, appPublicKey, appPublicPem, fixture,
} from './fixtures/alipay/load.ts';

// The official SDK is the reference: "app side" signs with the app key and checks Alipay's messages
// with the Alipay public key.
const sdk = new AlipaySdk({ appId: FIXTURE_APP_ID, privateKey: appPrivatePkcs1Pem, alipayPublicKey: alipayPublicPem });
const formOf = (text: string) => Object.fromEntries(new URLSearchParams(text.trim()));

describe('string to sign', () => {
  it('sorts by key, joins k=v with &, drops sign and empty values, keeps sign_type for requests', () => {
    expect(requestSignContent({ method: 'm', app_id: '1', sign: 'x', sign_type: 'RSA2', empty: '', biz_content: '{"a":"b/c"}' }))
      .toBe('app_id=1&biz_content={"a":"b/c"}&method=m&sign_type=RSA2');
  });
  it('drops sign_type too for notifies and returns (V1 rule)', () => {
    expect(notifySignContent({ b: '2', a: '1', sign: 'x', sign_type: 'RSA2' })).toBe('a=1&b=2');
    expect(notifySignContent({ a: '1', e: '' }, false)).toBe('a=1&e=');
  });
});

describe('request signatures against alipay-sdk', () => {
  it('signs exactly as the SDK does (PKCS#1 v1.5 is deterministic)', () => {
    const signed = Object.fromEntries(new URLSearchParams(sdk.sdkExecute('alipay.trade.query', {
      timestamp: '2026-03-01 10:00:00', notify_url: 'https://shop.example/notify', biz_content: { out_trade_no: 'o1', subject: '中文 & / =' },
    }, { bizContentAutoSnakeCase: false })));
    const { sign, ...rest } = signed;
    expect(signRequest(rest, appPrivateKey)).toBe(sign);
  });

  it('verifies the parameters of an SDK pageExecute URL, and refuses them once tampered', () => {
    const url = new URL(sdk.pageExecute('alipay.trade.page.pay', 'GET', {
      bizContent: { out_trade_no: 'o2', total_amount: '12.34', subject: '测试', product_code: 'FAST_INSTANT_TRADE_PAY' },
      return_url: 'https://gw.example/return?x=1',
    }));
    const params = Object.fromEntries(url.searchParams);
    expect(verifyRequest(params, appPublicKey)).toBe(true);
    expect(verifyRequest({ ...params, biz_content: params.biz_content!.replace('12.34', '0.01') }, appPublicKey)).toBe(false);
    expect(verifyRequest(params, alipayPublicKey)).toBe(false);
  });
});

describe('notify signatures against alipay-sdk', () => {
  const notify = formOf(fixture('notify_trade_success.txt'));

  it('the fixture notify verifies with ours and with the SDK (checkNotifySign and V2)', () => {
    expect(verifyNotify(notify, alipayPublicKey)).toBe(true);
    expect(sdk.checkNotifySignV2(notify)).toBe(true);
    expect(sdk.checkNotifySign(notify)).toBe(true);
  });

  it('a tampered amount fails with both', () => {
    const forged = { ...notify, total_amount: '0.01' };
    expect(verifyNotify(forged, alipayPublicKey)).toBe(false);
    expect(sdk.checkNotifySignV2(forged)).toBe(false);
  });

  it('what we sign (the simulator side) verifies with the SDK, values with quotes and + included', () => {
    const params = { ...notify, out_trade_no: 'att_2', subject: 'a+b "quoted" 50%', notify_id: 'n2' };
    const signed = { ...params, sign: signNotify(params, alipayPrivateKey) };
    expect(sdk.checkNotifySignV2(signed)).toBe(true);
    const roundTripped = formOf(new URLSearchParams(signed).toString());
    expect(sdk.checkNotifySignV2(roundTripped)).toBe(true);
  });

  it('an empty field in a notify is verified whether or not the signer covered it', () => {
    const params = { a: '1', empty: '', sign_type: 'RSA2' };
    const coveringEmpty = { ...params, sign: signRsa2(notifySignContent(params, false), alipayPrivateKey) };
    expect(notifySignContent(params, false)).toBe('a=1&empty=');
    expect(verifyNotify(coveringEmpty, alipayPublicKey)).toBe(true);
    expect(verifyNotify({ ...params, sign: signNotify(params, alipayPrivateKey) }, alipayPublicKey)).toBe(true);
  });
});

describe('response signatures: the raw-substring rule', () => {
  const raw = fixture('response_trade_precreate.json');

  it('the fixture (with \\/ escapes) verifies with ours and with the SDK', () => {
    expect(raw).toContain('https:\\/\\/qr.alipay.com');
    const r = readSignedResponse(raw, ['alipay_trade_precreate_response', 'error_response']);
    expect(r.key).toBe('alipay_trade_precreate_response');
    expect(verifyResponse(r, alipayPublicKey)).toBe(true);
    expect(() => sdk.checkResponseSign(raw, 'alipay_trade_precreate_response', r.sign!, 'trace')).not.toThrow();
    expect(JSON.parse(r.body).qr_code).toBe('https://qr.alipay.com/bax08431ehjwzbcmbfvo0066');
  });

  it('a re-serialization does not verify: the signature covers the bytes Alipay wrote', () => {
    const r = readSignedResponse(raw, ['alipay_trade_precreate_response']);
    const reserialized = JSON.stringify(JSON.parse(r.body));
    expect(reserialized).not.toBe(r.body);
    expect(verifyResponse({ ...r, body: reserialized }, alipayPublicKey)).toBe(false);
  });

  it('a tampered value does not verify', () => {
    const tampered = fixture('response_trade_query.json').replace('"total_amount":"12.34"', '"total_amount":"99.99"');
    expect(verifyResponse(readSignedResponse(tampered, ['alipay_trade_query_response']), alipayPublicKey)).toBe(false);
  });

  it('finds the span by JSON structure: sign first, braces and "sign" inside strings, spacing', () => {
    const body = alipayJson({ code: '10000', msg: 'Success', note: '} "sign":"x" {', nested: { a: [1, { b: '}' }] } });
    const sign = signResponse('k_response', JSON.parse(body), alipayPrivateKey).match(/"sign":"([^"]+)"/)![1]!;
    const raw2 = `  {"sign" : ${JSON.stringify(sign)} ,\n "k_response" :  ${body} }\n`;
    const r = readSignedResponse(raw2, ['k_response']);
    expect(r.body).toBe(body);
    expect(verifyResponse(r, alipayPublicKey)).toBe(true);
  });

  it('refuses duplicate members, missing responses and non-JSON', () => {
    expect(() => readSignedResponse('{"a_response":{},"a_response":{"code":"10000"},"sign":"x"}', ['a_response'])).toThrow(SyntaxError);
    expect(() => readSignedResponse('{"other":{}}', ['a_response', 'error_response'])).toThrow(SyntaxError);
    expect(() => readSignedResponse('<html>502</html>', ['a_response'])).toThrow(SyntaxError);
    expect(readSignedResponse('{"error_response":{"code":"40002"}}', ['a_response', 'error_response']).sign).toBeUndefined();
  });
});

describe('keys', () => {
  const derOf = (k: { export(o: { format: 'der'; type: 'spki' }): Buffer }) => k.export({ format: 'der', type: 'spki' }).toString('base64');

  it('accepts PKCS#8 and PKCS#1 PEM and the console\'s bare base64 body for the private key', () => {
    for (const text of [appPrivatePem, appPrivatePkcs1Pem, appPrivateBase64, appPrivateBase64.replace(/(.{64})/g, '$1\n')]) {
      expect(loadPrivateKey(text).asymmetricKeyType).toBe('rsa');
    }
  });

  it('accepts SPKI PEM and a bare base64 body for the public key', () => {
    expect(derOf(loadPublicKey(alipayPublicPem))).toBe(derOf(alipayPublicKey));
    expect(derOf(loadPublicKey(alipayPublicBase64))).toBe(derOf(alipayPublicKey));
    expect(derOf(loadPublicKey(appPublicPem))).toBe(derOf(appPublicKey));
  });

  it('refuses a private key where a public key belongs, and garbage', () => {
    expect(() => loadPublicKey(appPrivatePem)).toThrow();
    expect(() => loadPrivateKey('not a key')).toThrow();
    expect(() => loadPrivateKey(alipayPublicPem)).toThrow();
    expect(() => loadPublicKey('QUJD')).toThrow();
  });
});

describe('in-app pay order string (alipay.trade.app.pay)', () => {
  // The gateway is unreachable on purpose: building the order string makes no call.
  const cred = alipay.parseCredentials({ app_id: FIXTURE_APP_ID, private_key: appPrivatePem, alipay_public_key: alipayPublicPem, gateway: 'http://127.0.0.1:9/gateway.do' });
  const order = {
    channel: 'alipay_app' as const, orderNo: 'cs_app_0001', amount: 1234, currency: 'CNY', subject: 'Green tea 绿茶 x2',
    expiresAt: 1_780_000_000, notifyUrl: 'https://gw.example/notify/alipay/app_1', returnUrl: 'https://gw.example/pay/t/return',
  };

  it('is what the Node SDK\'s sdkExecute writes, signed by our request rule (sign_type in, unencoded) with the app key', async () => {
    const result = await alipay.createPayment(cred, order);
    if (!result.ok || result.action.type !== 'alipay_app') throw new Error('expected an alipay_app action');
    const s = result.action.orderString;
    // alipay-sdk-nodejs-all test/alipay.test.ts "sdkExecute(), sdkExec()": the prefix, in insertion order.
    expect(s.startsWith(`method=alipay.trade.app.pay&app_id=${FIXTURE_APP_ID}&charset=utf-8&version=1.0&sign_type=RSA2&timestamp=`)).toBe(true);
    const pairs = s.split('&').map((kv) => kv.split('=') as [string, string]);
    expect(pairs.map(([k]) => k)).toEqual(['method', 'app_id', 'charset', 'version', 'sign_type', 'timestamp', 'notify_url', 'biz_content', 'sign']);
    // Each value encodeURIComponent-ed (spaces as %20, never +).
    for (const [, v] of pairs) expect(encodeURIComponent(decodeURIComponent(v))).toBe(v);
    const p = Object.fromEntries(pairs.map(([k, v]) => [k, decodeURIComponent(v)]));
    expect(JSON.parse(p.biz_content!)).toEqual({
      out_trade_no: 'cs_app_0001', total_amount: '12.34', subject: 'Green tea 绿茶 x2', time_expire: '2026-05-29 04:26:40', product_code: 'QUICK_MSECURITY_PAY',
    });
    expect(p.notify_url).toBe(order.notifyUrl);
    expect(p.sign).toBe(signRequest(p, appPrivateKey));
    expect(verifyRequest(p, appPublicKey)).toBe(true);
    expect(verifyRequest({ ...p, biz_content: p.biz_content!.replace('12.34', '12.35') }, appPublicKey)).toBe(false);
    expect(verifyRequest({ ...p, sign_type: 'RSA' }, appPublicKey)).toBe(false);
  });

  it('parses the same from the Node form and the Java form (sorted, + for spaces); refuses repeats and bad encodings', async () => {
    const result = await alipay.createPayment(cred, order);
    if (!result.ok || result.action.type !== 'alipay_app') throw new Error('expected an alipay_app action');
    const node = parseOrderString(result.action.orderString);
    if (typeof node === 'string') throw new Error(node);
    const java = Object.keys(node).sort().map((k) => `${k}=${new URLSearchParams({ v: node[k]! }).toString().slice(2)}`).join('&');
    expect(java).toMatch(/subject%22%3A%22Green\+tea\+/);
    expect(parseOrderString(java)).toEqual(node);
    expect(parseOrderString(`${result.action.orderString}&sign=x`)).toBe('sign is given twice');
    expect(parseOrderString('a=%E0%A4%A')).toMatch(/bad URL encoding/);
    expect(parseOrderString('novalue')).toMatch(/not k=v pairs/);
    expect(parseOrderString('')).toMatch(/empty/);
  });
});
