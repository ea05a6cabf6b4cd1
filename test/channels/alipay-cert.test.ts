import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AlipaySdk } from 'alipay-sdk';
import { alipay } from '../../server/channels/alipay/index.ts';
import { certSn, parseCertMode, rootCertSn, responseKeyFor } from '../../server/channels/alipay/cert.ts';
import { issueCertificate, randomSerial, type DistinguishedName } from '../../server/sandbox/unionpay/x509.ts';

const key = () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const now = Math.floor(Date.now() / 1000);
const rootDn: DistinguishedName = [['C', 'CN'], ['O', 'Ant Financial Certification Authority'], ['OU', 'Certification Authority'], ['CN', 'Ant Financial Certification Authority R1']];
const caDn: DistinguishedName = [['C', 'CN'], ['O', 'Ant Financial'], ['OU', 'Certification Authority'], ['CN', 'Ant Financial Certification Authority Class 2 R1']];
const rootKey = key();
const otherRootKey = key();
const caKey = key();
const alipayKey = key();
const appKey = key();
const cert = (subject: DistinguishedName, issuer: DistinguishedName, publicKey: crypto.KeyObject, issuerKey: crypto.KeyObject, ca: boolean) =>
  issueCertificate({ serial: randomSerial(16), subject, issuer, notBefore: now - 60, notAfter: now + 86_400 * 365, publicKey, issuerKey, ca });
const root = cert(rootDn, rootDn, rootKey.publicKey, rootKey.privateKey, true);
const otherRootDn: DistinguishedName = [['C', 'CN'], ['O', 'Ant Financial'], ['CN', 'Second Root']];
const otherRoot = cert(otherRootDn, otherRootDn, otherRootKey.publicKey, otherRootKey.privateKey, true);
const ca = cert(caDn, rootDn, caKey.publicKey, rootKey.privateKey, true);
const alipayLeaf = cert([['C', 'CN'], ['O', '支付宝(中国)网络技术有限公司'], ['OU', '支付宝开放平台'], ['CN', '2021000000000001']], caDn, alipayKey.publicKey, caKey.privateKey, false);
const appCert = cert([['C', 'CN'], ['O', '某某科技有限公司'], ['OU', 'Alipay'], ['CN', '2021000000000001']], caDn, appKey.publicKey, caKey.privateKey, false);
const rootBundle = root + otherRoot;
const alipayPublicCert = alipayLeaf + ca;
const privatePem = appKey.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;

describe('Alipay certificate SNs', () => {
  it('match the official SDK (issuer DN reversed + decimal serial, md5; root SNs joined by _)', () => {
    const sdk = new AlipaySdk({ appId: '2021000000000001', privateKey: privatePem, appCertContent: appCert, alipayPublicCertContent: alipayPublicCert, alipayRootCertContent: rootBundle });
    expect(certSn(appCert)).toBe(sdk.config.appCertSn);
    expect(certSn(alipayPublicCert)).toBe(sdk.config.alipayCertSn);
    expect(rootCertSn(rootBundle)).toBe(sdk.config.alipayRootCertSn);
    expect(rootCertSn(rootBundle).split('_')).toHaveLength(2);
    expect(certSn(appCert)).toMatch(/^[0-9a-f]{32}$/);
    expect(certSn(appCert)).not.toBe(certSn(alipayLeaf));
  });

  it('parseCertMode checks the app cert against the private key and the Alipay cert against the chain', () => {
    const m = parseCertMode({ appCert, alipayPublicCert, alipayRootCert: rootBundle, appPrivateKey: appKey.privateKey });
    expect(m.alipayCertPublicKey.equals(alipayKey.publicKey)).toBe(true);
    expect(responseKeyFor(m, m.alipayCertSn)).toBe(m.alipayCertPublicKey);
    expect(responseKeyFor(m, 'f'.repeat(32))).toBeUndefined();
    expect(() => parseCertMode({ appCert: alipayLeaf, alipayPublicCert, alipayRootCert: rootBundle, appPrivateKey: appKey.privateKey })).toThrow(/app_cert/);
    // An Alipay cert from another chain (self-issued) is refused.
    const stray = cert([['C', 'CN'], ['CN', 'stray']], otherRootDn, alipayKey.publicKey, appKey.privateKey, false);
    expect(() => parseCertMode({ appCert, alipayPublicCert: stray, alipayRootCert: root, appPrivateKey: appKey.privateKey })).toThrow(/alipay_public_cert/);
    expect(() => parseCertMode({ appCert, alipayPublicCert, alipayRootCert: 'junk', appPrivateKey: appKey.privateKey })).toThrow(/alipay_root_cert/);
  });
});

describe('Alipay channel config in certificate mode', () => {
  const base = { app_id: '2021000000000001', private_key: privatePem };
  it('takes the three certificates instead of alipay_public_key', () => {
    const cred = alipay.parseCredentials({ ...base, app_cert: appCert, alipay_public_cert: alipayPublicCert, alipay_root_cert: rootBundle });
    expect(cred.certMode?.appCertSn).toBe(certSn(appCert));
    expect(cred.alipayPublicKey.equals(alipayKey.publicKey)).toBe(true);
    expect(alipay.credentialKeys).toEqual(expect.arrayContaining(['app_cert', 'alipay_public_cert', 'alipay_root_cert']));
  });
  it('refuses half a certificate set, a missing key, or a public key that is not the cert\'s', () => {
    expect(() => alipay.parseCredentials({ ...base, app_cert: appCert })).toThrow(/all of app_cert, alipay_public_cert and alipay_root_cert/);
    expect(() => alipay.parseCredentials(base)).toThrow(/alipay_public_key is required/);
    const otherPub = key().publicKey.export({ format: 'pem', type: 'spki' }) as string;
    expect(() => alipay.parseCredentials({ ...base, alipay_public_key: otherPub, app_cert: appCert, alipay_public_cert: alipayPublicCert, alipay_root_cert: rootBundle }))
      .toThrow(/not the key of alipay_public_cert/);
  });
});
