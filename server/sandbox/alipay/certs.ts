/**
 * The simulator's certificate mode (公钥证书, protocols/app-and-money-out.md §4.3): a fake Ant
 * Financial root CA per registered app, the Alipay public certificate (the leaf of "Alipay"'s
 * keypair) and the app certificate (the app's public key), both issued by that root, as Alipay's
 * console hands out alipayRootCert.crt, alipayCertPublicKey_RSA2.crt and appCertPublicKey_<app id>.crt.
 * The SNs come from the adapter's cert.ts, so simulator and adapter compute them alike.
 *
 * Unlike Alipay's: the root bundle holds one RSA root (Alipay's also carries an SM2 root, which
 * x509.ts cannot sign), and the leaves hang straight off the root (Alipay's hang off a
 * "Class 2" intermediate that alipayCertPublicKey_RSA2.crt carries after the leaf).
 */
import type { KeyObject } from 'node:crypto';
import { certSn, rootCertSn } from '../../channels/alipay/cert.ts';
import { issueCertificate, randomSerial, type DistinguishedName } from '../unionpay/x509.ts';
import type { MerchantCertSns } from './store.ts';

/** Names in the style of Alipay's own certificates. */
const ROOT_DN: DistinguishedName = [['C', 'CN'], ['O', 'Ant Financial'], ['OU', 'Certification Authority'], ['CN', 'Ant Financial Certification Authority R1']];
const ALIPAY_ORG = '支付宝(中国)网络技术有限公司';
const YEAR_S = 365 * 86_400;

export interface IssuedAlipayCertificates {
  appCert: string;
  alipayPublicCert: string;
  alipayRootCert: string;
  sns: MerchantCertSns;
}

/** Issues the root, the Alipay public certificate and the app certificate for one app (synchronous: three RSA signatures). */
export function issueAlipayCertificates(input: {
  appId: string;
  appPublicKey: KeyObject;
  alipayPublicKey: KeyObject;
  rootKeys: { publicKey: KeyObject; privateKey: KeyObject };
}): IssuedAlipayCertificates {
  const now = Math.floor(Date.now() / 1000);
  const issue = (subject: DistinguishedName, publicKey: KeyObject, ca: boolean, years: number) => issueCertificate({
    // Alipay's serials are 16 bytes (decimal in the SN's md5 input).
    serial: randomSerial(16), subject, issuer: ROOT_DN, notBefore: now - 3600, notAfter: now + years * YEAR_S,
    publicKey, issuerKey: input.rootKeys.privateKey, ca,
  });
  const alipayRootCert = issue(ROOT_DN, input.rootKeys.publicKey, true, 20);
  const alipayPublicCert = issue([['C', 'CN'], ['O', ALIPAY_ORG], ['OU', '支付宝开放平台'], ['CN', input.appId]], input.alipayPublicKey, false, 5);
  const appCert = issue([['C', 'CN'], ['O', 'Checkstand Sandbox'], ['OU', 'Alipay'], ['CN', input.appId]], input.appPublicKey, false, 5);
  return {
    appCert, alipayPublicCert, alipayRootCert,
    sns: { appCertSn: certSn(appCert), alipayRootCertSn: rootCertSn(alipayRootCert), alipayCertSn: certSn(alipayPublicCert) },
  };
}
