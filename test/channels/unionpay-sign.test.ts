/**
 * UnionPay signMethod 01 against UnionPay's own test environment: the two signed query answers
 * recorded in zhangv/union-pay test/service/B2CTest.php (origRespCode 05, and respCode 34), whose
 * signPubKeyCert chains to acp_test_middle.cer → acp_test_root.cer. Their leaf expired on
 * 2020-11-01, so the clock is fixed before it; they verify only with CRLF restored in the PEM.
 */
import crypto, { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  certIdOf, checkChain, checkCommonName, commonNameOf, filterBlank, parseRawResponse, signAsUnionpay, signDigest,
  signRequest, signString, verifyMessage, verifySignature, type TrustAnchors,
} from '../../server/channels/unionpay/sign.ts';
import { SignatureError, MalformedMessageError } from '../../server/errors.ts';
import { issueCertificate } from '../../server/sandbox/unionpay/x509.ts';

const dir = path.join(import.meta.dirname, 'fixtures/unionpay');
const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
const testTrust: TrustAnchors = { root: new X509Certificate(read('acp_test_root.cer')), middle: new X509Certificate(read('acp_test_middle.cer')) };
const BEFORE_EXPIRY = Date.parse('2018-06-14T04:30:00Z');

/** The recorded answer with the line endings UnionPay signed (the PHP source lost the CR). */
const withCrlf = (fields: Record<string, string>) => ({ ...fields, signPubKeyCert: fields.signPubKeyCert!.replace(/\r?\n/g, '\r\n') });

describe('UnionPay test environment answers (golden vectors)', () => {
  for (const file of ['query-origrespcode-05.txt', 'query-respcode-34.txt']) {
    const raw = read(file);
    const fields = parseRawResponse(raw);
    const leaf = new X509Certificate(fields.signPubKeyCert!);

    it(`${file}: parses the raw k=v answer (Chinese, =, newlines kept, no URL-decoding)`, () => {
      expect(fields.version).toBe('5.1.0');
      expect(fields.merId).toBe('700000000000001');
      expect(fields.signature).toMatch(/==$/); // '=' inside a value stays
      expect(fields.signPubKeyCert).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n?$/);
      expect(fields.respMsg).toMatch(/\[\d{7}\]$/);
    });

    it(`${file}: signature verifies over hex(SHA-256) with CRLF restored, and not without`, () => {
      expect(verifySignature(withCrlf(fields), leaf.publicKey)).toBe(true);
      expect(verifySignature(fields, leaf.publicKey)).toBe(false);
      // Hashing once (the classic mistake) does not verify.
      const once = crypto.createVerify('RSA-SHA256').update(signString(withCrlf(fields))).verify(leaf.publicKey, fields.signature!, 'base64');
      expect(once).toBe(false);
    });

    it(`${file}: the leaf chains to acp_test_middle → acp_test_root while valid, not after`, () => {
      expect(() => checkChain(leaf, testTrust, BEFORE_EXPIRY)).not.toThrow();
      expect(() => checkChain(leaf, testTrust, Date.parse('2020-11-02T00:00:00Z'))).toThrow(/not valid now/);
    });

    it(`${file}: the test-environment CN (00040000:SIGN) is refused: the CN check is kept in every mode`, () => {
      expect(commonNameOf(leaf)).toBe('041@Z2017-11-1@00040000:SIGN@00000001');
      expect(() => checkCommonName(leaf)).toThrow(SignatureError);
      expect(() => verifyMessage(withCrlf(fields), testTrust, BEFORE_EXPIRY)).toThrow(/CN/);
    });
  }

  it('reads the query answers as the note says', () => {
    const q05 = parseRawResponse(read('query-origrespcode-05.txt'));
    expect(q05).toMatchObject({ respCode: '00', origRespCode: '05', orderId: '20180614042747', txnTime: '20180614042747', origRespMsg: '交易已受理，请稍后查询交易结果[6154037]' });
    expect(parseRawResponse(read('query-respcode-34.txt'))).toMatchObject({ respCode: '34', respMsg: '查无此交易[2600000]' });
  });
});

describe('certId', () => {
  it('is the serial in decimal via BigInt: acp_test_sign serial 0x1002653215 → 68759663125', () => {
    const cert = new X509Certificate(read('acp_test_sign.cer'));
    expect(cert.serialNumber).toBe('1002653215');
    expect(certIdOf(cert)).toBe('68759663125');
  });
  it('keeps precision above 2^53 (parseInt would not)', () => {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const dn = [['CN', 'x']] as const;
    const serial = 0x1234567890abcdef12n;
    const cert = new X509Certificate(issueCertificate({ serial, subject: dn, issuer: dn, notBefore: 0, notAfter: 2e9, publicKey, issuerKey: privateKey, ca: true }));
    expect(certIdOf(cert)).toBe(serial.toString());
    expect(String(parseInt(cert.serialNumber, 16))).not.toBe(serial.toString());
  });
});

describe('signing', () => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });

  it('filters blanks, signs certId and signMethod, sorts keys, raw values, double SHA-256', () => {
    const signed = signRequest({ txnAmt: '100', orderId: ' ab12cd34 ', frontUrl: 'https://x.test/r?a=1&b=2', empty: '', gone: undefined }, privateKey, '68759663125');
    expect(signed).not.toHaveProperty('empty');
    expect(signed).not.toHaveProperty('gone');
    expect(signed.orderId).toBe('ab12cd34');
    expect(signString(signed)).toBe('certId=68759663125&frontUrl=https://x.test/r?a=1&b=2&orderId=ab12cd34&signMethod=01&txnAmt=100');
    expect(signDigest(signed)).toMatch(/^[0-9a-f]{64}$/);
    const ok = crypto.createVerify('RSA-SHA256').update(signDigest(signed)).verify(publicKey, signed.signature!, 'base64');
    expect(ok).toBe(true);
    expect(verifySignature(signed, publicKey)).toBe(true);
    expect(verifySignature({ ...signed, txnAmt: '101' }, publicKey)).toBe(false);
  });

  it('roundtrips a UnionPay-style signed message (signPubKeyCert included in the signed string)', () => {
    const msg = signAsUnionpay({ respCode: '00', merId: '777000000000001' }, privateKey, '-----BEGIN CERTIFICATE-----\r\nX\r\n-----END CERTIFICATE-----\r\n');
    expect(signString(msg)).toContain('signPubKeyCert=-----BEGIN CERTIFICATE-----\r\nX');
    expect(verifySignature(msg, publicKey)).toBe(true);
    expect(verifySignature({ ...msg, signPubKeyCert: msg.signPubKeyCert!.replace(/\r/g, '') }, publicKey)).toBe(false);
  });

  it('filterBlank trims and drops', () => {
    expect(filterBlank({ a: ' 1 ', b: '   ', c: '' })).toEqual({ a: '1' });
  });
});

describe('parseRawResponse', () => {
  it('splits on & only outside {} and [], each pair on its first =', () => {
    const p = parseRawResponse('a=1&riskRateInfo={commodityName=书&x=y}&list=[{k=v&k2=v2}]&sig=ab==&b=');
    expect(p).toEqual({ a: '1', riskRateInfo: '{commodityName=书&x=y}', list: '[{k=v&k2=v2}]', sig: 'ab==', b: '' });
  });
  it('keeps %xx and + as they came (no URL-decoding)', () => {
    expect(parseRawResponse('u=a%20b+c')).toEqual({ u: 'a%20b+c' });
  });
  it('refuses a repeated key, a pair without =, an unbalanced brace', () => {
    expect(() => parseRawResponse('a=1&a=2')).toThrow(MalformedMessageError);
    expect(() => parseRawResponse('a=1&junk')).toThrow(MalformedMessageError);
    expect(() => parseRawResponse('a={1&b=2')).toThrow(MalformedMessageError);
  });
});
