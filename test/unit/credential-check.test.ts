/**
 * The certificate part of Check credentials (apps/credential-check.ts), which the console banner
 * shares: each certificate's state against the clock and the chain checks the config allows; and
 * `checkstand channel check` exits 1 on a failed step.
 */
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { certificatesOf } from '../../server/apps/credential-check.ts';
import { issueCertificate, randomSerial } from '../../server/sandbox/unionpay/x509.ts';

const DAY = 86_400;
const now = Math.floor(Date.now() / 1000);
const keys = () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const rootKeys = keys();
const otherRoot = keys();
const leafKeys = keys();
const cert = (cn: string, notAfter: number, issuerKey: crypto.KeyObject, publicKey: crypto.KeyObject, ca = false) => issueCertificate({
  serial: randomSerial(), subject: [['C', 'CN'], ['CN', cn]], issuer: [['C', 'CN'], ['CN', 'Root']], notBefore: now - DAY, notAfter, publicKey, issuerKey, ca,
});

describe('certificatesOf', () => {
  it('gives each UnionPay certificate its state, and checks middle against root', () => {
    const root = cert('Root', now + 3650 * DAY, rootKeys.privateKey, rootKeys.publicKey, true);
    const middle = cert('Middle', now + 10 * DAY, rootKeys.privateKey, leafKeys.publicKey, true);
    const sign = cert('Sign', now - DAY, rootKeys.privateKey, leafKeys.publicKey);
    const ok = certificatesOf('unionpay', { sign_cert: sign, middle_cert: middle, root_cert: root }, now);
    expect(ok.chainProblems).toEqual([]);
    expect(ok.list.map((c) => [c.field, c.state])).toEqual([['sign_cert', 'expired'], ['middle_cert', 'expiring'], ['root_cert', 'valid']]);
    expect(ok.list[1]!.notAfter).toBe(now + 10 * DAY);

    const foreignMiddle = cert('Middle', now + 3650 * DAY, otherRoot.privateKey, leafKeys.publicKey, true);
    const bad = certificatesOf('unionpay', { sign_cert: sign, middle_cert: foreignMiddle, root_cert: root }, now);
    expect(bad.chainProblems[0]).toContain('middle_cert is not issued by root_cert');
  });

  it('has nothing to date in Alipay public-key mode, PayPal or Stripe', () => {
    expect(certificatesOf('alipay', { alipay_public_key: 'x' }, now)).toMatchObject({ list: [], chainProblems: [] });
    expect(certificatesOf('alipay', {}, now).chainChecked).toContain('Public-key mode');
    expect(certificatesOf('paypal', { client_id: 'x' }, now).list).toEqual([]);
    expect(certificatesOf('stripe', {}, now).list).toEqual([]);
  });
});

describe('checkstand channel check', () => {
  it('prints each step and exits 1 when a step fails', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-check-'));
    const env = { ...process.env, DATABASE_URL: `sqlite:${path.join(dir, 'cli.db')}`, CHECKSTAND_DATA_DIR: dir, LOG_LEVEL: 'silent' };
    const run = promisify(execFile);
    try {
      const app = JSON.parse((await run(process.execPath, ['bin/checkstand.js', 'app', 'create', '--name', 'Shop', '--json'], { env })).stdout).app_id;
      const failed = await run(process.execPath, ['bin/checkstand.js', 'channel', 'check', '--app', app, '--channel', 'paypal', '--mode', 'live'], { env }).then(() => undefined, (err) => err);
      expect(failed?.code).toBe(1);
      expect(failed.stdout).toMatch(/^failed\s+The configuration parses: No paypal credentials are stored for live mode/m);
      expect(failed.stdout).toMatch(/^skipped\s+A signed call is accepted/m);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
