/**
 * Console account lockout, counted in the database: two gateway processes on one database see
 * the same failed sign-ins, the right password is refused while locked, a success clears the
 * count, emails without an account lock alike (nothing tells which exist), concurrent guesses get
 * no more password checks than the limit, and no typed email is stored in the clear.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { LOCK_AFTER, emailHmac, reserveAttempt } from '../../server/dashboard/lockout.ts';
import { ConsoleClient } from '../support/console.ts';

const PASSWORD = 'a long enough passphrase';
const SESSION = '__Host-checkstand_console';
let a: TestGateway;
let b: TestGateway;
beforeAll(async () => {
  a = await startTestGateway({ workers: false });
  b = await startTestGateway({ workers: false, sameDatabaseAs: a });
  for (const email of ['locked@lock.example', 'other@lock.example', 'reset@lock.example', 'expiry@lock.example']) {
    await createConsoleUser(a.deps.db, { email, appId: a.app.app_id, password: PASSWORD });
  }
});
afterAll(async () => {
  await b?.close();
  await a?.close();
});

/** A sign-in through one process; both sit behind the one PUBLIC_URL, whose origin the browser sends. */
async function login(g: TestGateway, email: string, password: string) {
  const c = new ConsoleClient(g.url);
  const token = await c.tokenFrom('/console/login');
  const res = await c.post('/console/login', { _csrf: token, email, password }, { origin: new URL(g.deps.config.publicUrl).origin });
  return { status: res.status, text: res.text, signedIn: c.cookies.has(SESSION) };
}

describe('console lockout across processes', () => {
  it('locks an email after 10 failures spread over two processes, the right password included', async () => {
    for (let i = 0; i < LOCK_AFTER; i++) expect((await login(i % 2 ? b : a, 'locked@lock.example', `wrong ${i}`)).status).toBe(401);
    for (const g of [a, b]) {
      const res = await login(g, 'locked@lock.example', PASSWORD);
      expect(res.status).toBe(429);
      expect(res.text).toContain('Too many failed attempts');
      expect(res.signedIn).toBe(false);
    }
    // Another account is not affected, in either process.
    expect((await login(b, 'other@lock.example', PASSWORD)).signedIn).toBe(true);
    // The typed email is kept only as an HMAC.
    const rows = await a.deps.db('console_login_failures').select('*');
    expect(JSON.stringify(rows)).not.toContain('lock.example');
    expect(rows.map((r) => r.email_hmac)).toContain(emailHmac(a.deps.config.masterKeyBytes, 'locked@lock.example'));
  });

  it('an email without an account answers exactly as one with an account does', async () => {
    const statuses = async (email: string) => {
      const out: number[] = [];
      for (let i = 0; i <= LOCK_AFTER; i++) out.push((await login(i % 2 ? a : b, email, `guess ${i}`)).status);
      return out;
    };
    const unknown = await statuses('nobody@lock.example');
    expect(unknown).toEqual([...Array(LOCK_AFTER).fill(401), 429]);
    await createConsoleUser(a.deps.db, { email: 'someone@lock.example', appId: a.app.app_id, password: PASSWORD });
    expect(await statuses('someone@lock.example')).toEqual(unknown);
  });

  it('a successful sign-in clears the count', async () => {
    for (let i = 0; i < LOCK_AFTER - 1; i++) expect((await login(a, 'reset@lock.example', `wrong ${i}`)).status).toBe(401);
    expect((await login(b, 'reset@lock.example', PASSWORD)).signedIn).toBe(true);
    for (let i = 0; i < LOCK_AFTER - 1; i++) expect((await login(b, 'reset@lock.example', `wrong again ${i}`)).status).toBe(401);
    // 18 failures in the window, but never 10 since the success.
    expect((await login(a, 'reset@lock.example', PASSWORD)).signedIn).toBe(true);
  });

  it('the lock ends after its time, and the count starts again', async () => {
    for (let i = 0; i <= LOCK_AFTER; i++) await login(a, 'expiry@lock.example', `wrong ${i}`);
    expect((await login(b, 'expiry@lock.example', PASSWORD)).status).toBe(429);
    const hmac = emailHmac(a.deps.config.masterKeyBytes, 'expiry@lock.example');
    // As 15 minutes later.
    const past = Date.now() - 16 * 60_000;
    await a.deps.db('console_login_failures').where({ email_hmac: hmac }).update({ locked_until_ms: past, window_start_ms: past - 60_000 });
    expect((await login(b, 'expiry@lock.example', PASSWORD)).signedIn).toBe(true);
    expect(await a.deps.db('console_login_failures').where({ email_hmac: hmac })).toHaveLength(0);
  });

  it('concurrent attempts through both processes get exactly 10 password checks', async () => {
    const key = a.deps.config.masterKeyBytes;
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => reserveAttempt((i % 2 ? b : a).deps.db, key, 'burst@lock.example')));
    expect(results.filter((r) => r.lockedUntilMs === null)).toHaveLength(LOCK_AFTER);
    expect(results.filter((r) => r.justLocked)).toHaveLength(1);
  });
});
