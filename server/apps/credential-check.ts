/**
 * "Check credentials" (issue 16, channel onboarding): the stored config of one channel and mode,
 * checked in order, each step with its own result: (1) it parses (the adapter's parseCredentials),
 * (2) the key pair matches, (3) the certificates chain and are in date, (4) one harmless signed
 * call: a query for an order number that cannot exist. A "no such order" answer proves the channel
 * took our signature and we could verify its answer. Messages never echo a secret: the adapters'
 * are written that way, and every message is scrubbed of the config's secret values again here.
 */
import crypto, { X509Certificate } from 'node:crypto';
import type { Deps } from '../deps.ts';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError, SignatureError } from '../errors.ts';
import { channelFor, sandboxFor } from '../channels/registry.ts';
import type { AttemptContext, ChannelCode, Provider } from '../channels/types.ts';
import { getCredentials, readStoredConfigs } from './channel-configs.ts';
import { pemCertificates } from '../channels/alipay/cert.ts';
import * as alipayKeys from '../channels/alipay/sign.ts';
import * as wechatKeys from '../channels/wechatpay/sign.ts';
import { beijingTime } from '../channels/unionpay/transform.ts';

/** A certificate expiring within this is flagged (the console banner uses the same window). */
export const EXPIRY_WARNING_S = 30 * 86_400;

export type StepStatus = 'ok' | 'failed' | 'skipped' | 'not_applicable';

export interface CertificateInfo {
  /** The config field (and index in a bundle) it came from. */
  field: string;
  subject: string;
  serial: string;
  /** Unix seconds. */
  notBefore: number;
  notAfter: number;
  state: 'valid' | 'expiring' | 'expired' | 'not_yet_valid';
}

export interface CheckStep {
  id: 'parse' | 'key_pair' | 'certificates' | 'signed_call';
  title: string;
  status: StepStatus;
  message: string;
  certificates?: CertificateInfo[];
}

export interface CredentialCheckResult {
  provider: Provider;
  livemode: boolean;
  ok: boolean;
  /** Simulator keys the gateway generated itself (test mode). */
  generated: boolean;
  steps: CheckStep[];
  /** The order number the signed call asked about. */
  probeOrderNo?: string;
}

const TITLES: Record<CheckStep['id'], string> = {
  parse: 'The configuration parses',
  key_pair: 'The key pair matches',
  certificates: 'Certificates chain and are in date',
  signed_call: 'A signed call is accepted (query for an order that does not exist)',
};

/** Config fields whose values are secrets: never in a message, even if an adapter quoted one. */
const SECRET_FIELDS = ['private_key', 'sign_key', 'apiv3_key', 'api_v2_key', 'app_secret', 'client_secret', 'secret_key', 'webhook_secret'];

/** Runs the four steps on the stored config of an app's channel in one mode. Test mode without a config provisions the simulator's, as a payment would. */
export async function checkChannelCredentials(
  deps: Deps,
  appId: string,
  provider: Provider,
  livemode: boolean,
  opts: { now?: number } = {},
): Promise<CredentialCheckResult> {
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const channel = channelFor(provider);
  let stored = (await readStoredConfigs(deps, appId, { provider, livemode }))[0];
  if (!stored && channel && !livemode && sandboxFor(deps.config, provider)) {
    await getCredentials(deps, appId, provider, false);
    stored = (await readStoredConfigs(deps, appId, { provider, livemode }))[0];
  }
  const result: CredentialCheckResult = { provider, livemode, ok: false, generated: stored?.generated ?? false, steps: [] };
  const step = (id: CheckStep['id'], status: StepStatus, message: string, extra: Partial<CheckStep> = {}) =>
    result.steps.push({ id, title: TITLES[id], status, message: scrub(message, stored?.raw), ...extra });
  const skipRest = (from: CheckStep['id'][]) => from.forEach((id) => step(id, 'skipped', 'Not run: an earlier step failed.'));

  if (!channel || !stored) {
    step('parse', 'failed', !channel ? `${provider} is not available in this build.` : `No ${provider} credentials are stored for ${livemode ? 'live' : 'test'} mode: store them on the channels page first.`);
    skipRest(['key_pair', 'certificates', 'signed_call']);
    return result;
  }
  const raw = stored.raw;
  let cred: unknown;
  let parseError: string | undefined;
  try {
    cred = channel.parseCredentials(raw);
  } catch (err) {
    if (!(err instanceof ChannelConfigError)) throw err;
    parseError = err.message;
  }
  const pair = keyPairOf(provider, raw);
  const certs = certificatesOf(provider, raw, now);
  const certProblems = [...certs.chainProblems, ...certs.list.filter((c) => c.state === 'expired' || c.state === 'not_yet_valid').map(dateProblem)];

  // parseCredentials checks the pair and the chain too: when steps 2 or 3 name why it refused, the
  // refusal is shown there, at the step it belongs to.
  const explained = parseError !== undefined
    && ((pair.problem !== undefined && /app_cert|apiclient_cert|sign_key|own public key/.test(parseError))
      || (certs.chainProblems.length > 0 && /issued by/.test(parseError)));
  if (parseError !== undefined && !explained) {
    step('parse', 'failed', parseError);
    skipRest(['key_pair', 'certificates', 'signed_call']);
    return result;
  }
  step('parse', 'ok', explained ? 'The fields are present and the keys and certificates read; the parser refused the config for the reason below.' : 'Every field is present and of its format; keys and certificates read.');

  if (pair.problem !== undefined) step('key_pair', 'failed', pair.problem);
  else step('key_pair', pair.applicable ? 'ok' : 'not_applicable', pair.message);

  const certStatus: StepStatus = certProblems.length ? 'failed' : certs.list.length ? 'ok' : 'not_applicable';
  const expiring = certs.list.filter((c) => c.state === 'expiring');
  step('certificates', certStatus, certProblems.length
    ? certProblems.join(' ')
    : certs.list.length
      ? [certs.chainChecked, 'Every certificate is in date.', ...expiring.map((c) => `${c.field} expires on ${isoDate(c.notAfter)}: renew it at the channel.`)].filter(Boolean).join(' ')
      : certs.chainChecked || 'This channel uses no certificates in its config.',
  { certificates: certs.list });

  if (pair.problem !== undefined || certProblems.length || parseError !== undefined) {
    skipRest(['signed_call']);
    return result;
  }

  const probe = probeFor(provider, now);
  result.probeOrderNo = probe.orderNo;
  try {
    const answer = await channel.queryPayment(cred, probe.orderNo, probe.ctx);
    if (answer.status === 'succeeded') {
      step('signed_call', 'failed', `${channel.displayName} reports a paid order for ${probe.orderNo}, a number this check made up: check the gateway URL in the config.`);
    } else if (answer.status === 'not_found' || provider === 'unionpay') {
      // UnionPay answers 34 (查无此交易) in a signed message the adapter has verified; it maps to closed once the made-up order's time has passed.
      step('signed_call', 'ok', provider === 'paypal'
        ? `PayPal issued an access token for the client id and secret, and answered that there is no order ${probe.ctx.reference}.`
        : `${channel.displayName} accepted the signed query for ${probe.orderNo} and answered, in a message whose signature verified, that there is no such order.`);
    } else {
      step('signed_call', 'failed', `${channel.displayName} answered ${answer.status} for ${probe.orderNo}, a number this check made up.`);
    }
  } catch (err) {
    if (provider === 'stripe' && err instanceof ChannelRequestError && err.code === 'resource_missing') {
      step('signed_call', 'ok', `Stripe accepted the secret key and answered that there is no Checkout Session ${probe.ctx.reference}.`);
    } else {
      step('signed_call', 'failed', callFailure(channel.displayName, err, deps));
    }
  }
  result.ok = result.steps.every((s) => s.status === 'ok' || s.status === 'not_applicable');
  return result;
}

function callFailure(name: string, err: unknown, deps: Deps): string {
  const msg = err instanceof Error ? err.message.slice(0, 500) : '';
  if (err instanceof SignatureError) return `${name}'s answer did not verify with the configured ${name} key or certificate: ${msg}`;
  if (err instanceof ChannelConfigError) return `${name} refused the credentials: ${msg}`;
  if (err instanceof ChannelRequestError) return `${name} refused the call (${err.code}): ${msg}`;
  if (err instanceof ChannelUnavailable || err instanceof MalformedMessageError) return `${name} could not be asked: ${msg}`;
  deps.logger.error('credential check call failed', { channel: name, err });
  return `The call to ${name} failed unexpectedly; see the gateway's log.`;
}

/** An order number that cannot exist, and the attempt context the adapter needs to ask about it. */
function probeFor(provider: Provider, now: number): { orderNo: string; ctx: AttemptContext } {
  const rand = crypto.randomBytes(8).toString('hex');
  // UnionPay orderIds are letters and digits only.
  const orderNo = provider === 'unionpay' ? `chk${rand}` : `chk_${rand}`;
  const code: Record<Provider, ChannelCode> = { alipay: 'alipay_pc', wechatpay: 'wechat_native', unionpay: 'unionpay_pc', paypal: 'paypal', stripe: 'card' };
  // PayPal and Stripe are asked by their own object id (the attempt's reference), UnionPay by the txnTime the order was sent with.
  const reference = provider === 'paypal' ? `CHK${rand.toUpperCase()}` : provider === 'stripe' ? `cs_chk_${rand}` : provider === 'unionpay' ? beijingTime(now - 3600) : null;
  return { orderNo, ctx: { channel: code[provider], reference, channelTradeNo: null, amount: 1, currency: 'CNY', createdAt: now - 3600, expiresAt: now - 3600 } };
}

// --- key pairs -----------------------------------------------------------------------------------

interface PairFinding {
  applicable: boolean;
  /** Why the pair does not match; undefined when it does (or cannot be read: the parser says why). */
  problem?: string;
  message: string;
}

const field = (raw: unknown, key: string): string | undefined => {
  const v = (raw as Record<string, unknown> | null)?.[key];
  return typeof v === 'string' ? v : undefined;
};

function quietly<T>(load: () => T): T | undefined {
  try {
    return load();
  } catch {
    return undefined;
  }
}

function keyPairOf(provider: Provider, raw: unknown): PairFinding {
  switch (provider) {
    case 'alipay': {
      const priv = quietly(() => alipayKeys.loadPrivateKey(field(raw, 'private_key') ?? ''));
      if (!priv) return { applicable: true, message: 'private_key does not read (see the parser).' };
      const own = crypto.createPublicKey(priv);
      const appCert = firstCert(field(raw, 'app_cert'));
      if (appCert && !appCert.publicKey.equals(own)) return { applicable: true, message: '', problem: "app_cert does not hold the public key of private_key: upload the app's own certificate (appCertPublicKey_<APPID>.crt) made from this key, or the private key it was made from." };
      const alipayKey = firstCert(field(raw, 'alipay_public_cert'))?.publicKey ?? quietly(() => alipayKeys.loadPublicKey(field(raw, 'alipay_public_key') ?? ''));
      if (alipayKey?.equals(own)) return { applicable: true, message: '', problem: "The Alipay public key is the app's own public key: use the Alipay public key (支付宝公钥) or alipayCertPublicKey_RSA2.crt." };
      return { applicable: true, message: appCert ? 'app_cert holds the public key of private_key; the Alipay key is not the app’s own.' : 'private_key reads; the Alipay public key is not the app’s own (public-key mode has no certificate to pair with).' };
    }
    case 'wechatpay': {
      const priv = quietly(() => wechatKeys.loadPrivateKey(field(raw, 'private_key') ?? ''));
      if (!priv) return { applicable: true, message: 'private_key does not read (see the parser).' };
      const own = crypto.createPublicKey(priv);
      const wxKey = quietly(() => wechatKeys.loadPublicKey(field(raw, 'wechatpay_public_key') ?? ''));
      if (wxKey?.equals(own)) return { applicable: true, message: '', problem: "wechatpay_public_key is the merchant's own public key: use the WeChat Pay public key (微信支付公钥, pub_key.pem)." };
      const cert = firstCert(field(raw, 'apiclient_cert'));
      if (!cert) return { applicable: true, message: 'private_key reads; WeChat Pay checks it against serial_no on the signed call (no apiclient_cert in the config to compare with).' };
      if (!cert.publicKey.equals(own)) return { applicable: true, message: '', problem: 'apiclient_cert is not the certificate of private_key (their public keys differ).' };
      const serial = field(raw, 'serial_no')?.toUpperCase();
      if (serial && serial !== cert.serialNumber.toUpperCase()) return { applicable: true, message: '', problem: `serial_no is not the serial of apiclient_cert (${cert.serialNumber.toUpperCase()}): every request names the certificate by it.` };
      return { applicable: true, message: 'apiclient_cert is the certificate of private_key, and serial_no is its serial.' };
    }
    case 'unionpay': {
      const cert = firstCert(field(raw, 'sign_cert'));
      const key = quietly(() => crypto.createPrivateKey(field(raw, 'sign_key') ?? ''));
      if (!cert || !key) return { applicable: true, message: 'sign_cert or sign_key does not read (see the parser).' };
      if (!cert.checkPrivateKey(key)) return { applicable: true, message: '', problem: 'sign_key does not belong to sign_cert: take both from the same signing .pfx.' };
      return { applicable: true, message: 'sign_key belongs to sign_cert.' };
    }
    case 'paypal':
      return { applicable: false, message: 'No key pair: PayPal authenticates with the REST app’s client id and secret (checked by the signed call).' };
    case 'stripe':
      return { applicable: false, message: 'No key pair: Stripe authenticates with the secret key (checked by the signed call).' };
  }
}

// --- certificates --------------------------------------------------------------------------------

/** Every certificate of a PEM (or bare base64 DER) text; none when it does not read. */
function certsOf(text: string | undefined): X509Certificate[] {
  if (!text) return [];
  const ders = text.includes('-----BEGIN') ? pemCertificates(text) : [Buffer.from(text.replace(/\s+/g, ''), 'base64')];
  return ders.flatMap((der) => quietly(() => [new X509Certificate(der)]) ?? []);
}
const firstCert = (text: string | undefined) => certsOf(text)[0];

function infoOf(fieldName: string, cert: X509Certificate, now: number): CertificateInfo {
  const notBefore = Math.floor(Date.parse(cert.validFrom) / 1000);
  const notAfter = Math.floor(Date.parse(cert.validTo) / 1000);
  const state = notAfter < now ? 'expired' : notBefore > now ? 'not_yet_valid' : notAfter - now <= EXPIRY_WARNING_S ? 'expiring' : 'valid';
  return { field: fieldName, subject: cert.subject.replace(/\n/g, ', ').slice(0, 200), serial: cert.serialNumber.toUpperCase(), notBefore, notAfter, state };
}

const isoDate = (s: number) => new Date(s * 1000).toISOString().slice(0, 10);
const dateProblem = (c: CertificateInfo) =>
  c.state === 'expired' ? `${c.field} expired on ${isoDate(c.notAfter)}.` : `${c.field} is not valid before ${isoDate(c.notBefore)}.`;

/**
 * The certificates of a raw config, each with its dates, and the chain checks the channel allows
 * (the ones whose issuers the config holds). Also the banner's source (certificate-alerts.ts).
 */
export function certificatesOf(provider: Provider, raw: unknown, now: number): { list: CertificateInfo[]; chainProblems: string[]; chainChecked: string } {
  const list: CertificateInfo[] = [];
  const add = (name: string, certs: X509Certificate[]) => certs.forEach((c, i) => list.push(infoOf(certs.length > 1 ? `${name}[${i}]` : name, c, now)));
  const chainProblems: string[] = [];
  let chainChecked = '';
  switch (provider) {
    case 'alipay': {
      const app = certsOf(field(raw, 'app_cert'));
      const alipayCerts = certsOf(field(raw, 'alipay_public_cert'));
      const roots = certsOf(field(raw, 'alipay_root_cert'));
      add('app_cert', app.slice(0, 1));
      add('alipay_public_cert', alipayCerts);
      add('alipay_root_cert', roots);
      if (alipayCerts[0]) {
        const chain = [...alipayCerts.slice(1), ...roots];
        if (chain.some((c) => alipayCerts[0]!.checkIssued(c) && alipayCerts[0]!.verify(c.publicKey))) chainChecked = 'alipay_public_cert is issued by a certificate of alipay_root_cert (or its own chain).';
        else chainProblems.push('alipay_public_cert is not issued by a certificate of alipay_root_cert or its own chain: download both again from the Open Platform.');
      } else {
        chainChecked = 'Public-key mode: no certificates (transfers and red packets need certificate mode).';
      }
      break;
    }
    case 'wechatpay': {
      const platform = (raw as { platform_certificates?: unknown })?.platform_certificates;
      if (Array.isArray(platform)) platform.forEach((p, i) => add(`platform_certificates[${i}]`, certsOf(field(p, 'certificate')).slice(0, 1)));
      add('apiclient_cert', certsOf(field(raw, 'apiclient_cert')).slice(0, 1));
      add('v2_ca_certificate', certsOf(field(raw, 'v2_ca_certificate')).slice(0, 1));
      chainChecked = list.length
        ? 'WeChat Pay’s issuing CA is not part of the config: dates only.'
        : 'The WeChat Pay public key (微信支付公钥) has no certificate to expire.';
      break;
    }
    case 'unionpay': {
      const sign = certsOf(field(raw, 'sign_cert')).slice(0, 1);
      const middle = certsOf(field(raw, 'middle_cert')).slice(0, 1);
      const root = certsOf(field(raw, 'root_cert')).slice(0, 1);
      add('sign_cert', sign);
      add('middle_cert', middle);
      add('root_cert', root);
      if (middle[0] && root[0]) {
        if (middle[0].checkIssued(root[0]) && middle[0].verify(root[0].publicKey)) chainChecked = 'middle_cert is issued by root_cert (they verify UnionPay’s answers).';
        else chainProblems.push('middle_cert is not issued by root_cert: take both from the same UnionPay SDK package (production or test).');
      }
      break;
    }
    case 'paypal':
    case 'stripe':
      chainChecked = 'This channel uses no certificates in its config.';
      break;
  }
  return { list, chainProblems, chainChecked };
}

// --- secrets -------------------------------------------------------------------------------------

/** Removes every secret value of the config (and each line of a PEM one) from a message. */
function scrub(message: string, raw: unknown): string {
  let out = message;
  for (const key of SECRET_FIELDS) {
    const v = field(raw, key);
    if (!v) continue;
    for (const piece of [v, ...v.split(/\r?\n/)]) {
      const p = piece.trim();
      if (p.length >= 8 && !p.startsWith('-----')) out = out.split(p).join('[redacted]');
    }
  }
  return out;
}

