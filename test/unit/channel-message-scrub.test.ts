import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BODY_LIMIT, boundedJson, claimedOrderNo, parseBody, scrubHeaders, scrubInbound, scrubObject } from '../../server/channel-messages/scrub.ts';

/** The rules a stored channel message follows (channel-messages/scrub.ts), channel by channel. */

const pem = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

describe('channel message scrubbing', () => {
  it('keeps only the channels\' headers, with signatures as a short hash and Authorization dropped', () => {
    const h = scrubHeaders({
      authorization: 'WECHATPAY2-SHA256-RSA2048 mchid="1",signature="abc"', cookie: 'sid=1', 'x-forwarded-for': '10.0.0.1',
      'content-type': 'application/json', 'wechatpay-signature': 'c2lnbmF0dXJl', 'wechatpay-serial': '5157F09EFDC096DE15EBE81A47057A72',
      'stripe-signature': 't=1,v1=deadbeef', 'paypal-transmission-sig': 'abc==', 'paypal-auth-algo': 'SHA256withRSA',
    });
    expect(Object.keys(h).sort()).toEqual(['content-type', 'paypal-auth-algo', 'paypal-transmission-sig', 'stripe-signature', 'wechatpay-serial', 'wechatpay-signature']);
    expect(h['wechatpay-signature']).toMatch(/^\[signature [0-9a-f]{8}\]$/);
    expect(h['stripe-signature']).not.toContain('deadbeef');
    expect(h['wechatpay-serial']).toBe('5157F09EFDC096DE15EBE81A47057A72');
  });

  it('Alipay form: sign hashed, sign_type kept, the buyer masked, JSON fields scrubbed inside', () => {
    const body = new URLSearchParams({
      out_trade_no: 'cs123', total_amount: '12.00', sign: 'QmFzZTY0U2lnbg==', sign_type: 'RSA2', buyer_logon_id: '159****5620',
      fund_bill_list: JSON.stringify([{ amount: '12.00', fundChannel: 'ALIPAYACCOUNT' }]), app_auth_token: 'tok-secret',
    }).toString();
    const s = scrubInbound({ headers: {}, contentType: 'application/x-www-form-urlencoded', body: Buffer.from(body) }) as any;
    expect(s.body).toMatchObject({ out_trade_no: 'cs123', total_amount: '12.00', sign_type: 'RSA2', buyer_logon_id: '[customer data]', app_auth_token: '[redacted]' });
    expect(s.body.sign).toMatch(/^\[signature [0-9a-f]{8}\]$/);
    expect(s.body.fund_bill_list).toEqual([{ amount: '12.00', fundChannel: 'ALIPAYACCOUNT' }]);
    expect(JSON.stringify(s)).not.toContain('QmFzZTY0U2lnbg');
  });

  it('WeChat v3 JSON: the resource ciphertext is not kept; v2 XML: sign hashed, openid masked', () => {
    const v3 = scrubObject(parseBody('application/json', JSON.stringify({ id: 'n1', resource: { algorithm: 'AEAD_AES_256_GCM', ciphertext: 'A'.repeat(400), nonce: 'n', associated_data: 'transaction' } }))!) as any;
    expect(v3.resource).toEqual({ algorithm: 'AEAD_AES_256_GCM', ciphertext: '[ciphertext 400 chars]', nonce: 'n', associated_data: 'transaction' });
    const v2 = scrubObject(parseBody('text/xml', '<xml><return_code><![CDATA[SUCCESS]]></return_code><openid>oUpF8uMuAJO_M2pxb1Q9zNjWeS6o</openid><sign>ABCDEF0123</sign></xml>')!);
    expect(v2).toEqual({ return_code: 'SUCCESS', openid: '[customer data]', sign: expect.stringMatching(/^\[signature /) });
  });

  it('UnionPay and Stripe: certificates, PEM, long base64 and client secrets are redacted', () => {
    const up = scrubObject({ orderId: 'cs9', signature: 'c2ln', signPubKeyCert: pem, accNo: '6216261000000000018', blob: 'Q'.repeat(300), note: pem });
    expect(up).toMatchObject({ orderId: 'cs9', signPubKeyCert: '[redacted]', accNo: '[customer data]', blob: '[redacted]', note: '[redacted]' });
    const stripe = scrubObject({ data: { object: { id: 'pi_1', client_secret: 'pi_1_secret_abc', billing_details: { email: 'a@b.c', name: 'Li Lei' }, amount: 1200 } } }) as any;
    expect(stripe.data.object).toEqual({ id: 'pi_1', client_secret: '[redacted]', billing_details: { email: '[customer data]', name: '[customer data]' }, amount: 1200 });
    expect(JSON.stringify([up, stripe])).not.toMatch(/BEGIN|PRIVATE/);
  });

  it('a signed order string inside a field keeps its fields, not its sign', () => {
    const s = scrubObject({ orderString: 'app_id=2021&biz_content=x&sign=SECRETSIGN&sign_type=RSA2' }) as any;
    expect(s.orderString).toContain('app_id=2021');
    expect(s.orderString).not.toContain('SECRETSIGN');
  });

  it('cuts at the bound on a character boundary, with a marker saying how long it was', () => {
    const { body, bytes } = boundedJson({ text: '茶'.repeat(20_000) });
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(BODY_LIMIT);
    expect(bytes).toBeGreaterThan(60_000);
    expect(body).toMatch(new RegExp(`…\\[cut: ${bytes} bytes, the first ${BODY_LIMIT} kept\\]$`));
    expect(body).not.toContain('\uFFFD');
    expect(boundedJson({ a: 1 })).toEqual({ body: '{"a":1}', bytes: 7 });
  });

  it('files a raw message under the order number it claims, only a plausible one', () => {
    expect(claimedOrderNo({ out_trade_no: 'cs_abc' })).toBe('cs_abc');
    expect(claimedOrderNo({ orderId: 'cs123' })).toBe('cs123');
    expect(claimedOrderNo({ out_trade_no: "x' or 1=1" })).toBeUndefined();
  });
});
