import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { sqlOf } from '../sql.ts';

/**
 * Account lockout for console sign-ins, on top of the per-process rate limits: after
 * LOCK_AFTER attempts on one email within the window, from any IP and through any gateway
 * process (the count is a row in the database), the email is locked for LOCK_MS, the right
 * password included. The attempt is counted before the password is checked, so a burst of
 * concurrent guesses gets no more than LOCK_AFTER checks; a successful sign-in clears the count.
 * Emails without an account are counted alike, and only as an HMAC.
 */

export const LOCK_AFTER = 10;
export const LOCK_WINDOW_MS = 15 * 60_000;
export const LOCK_MS = 15 * 60_000;

const T = 'console_login_failures';
const RESERVE = `insert into ${T} (email_hmac, failures, window_start_ms, locked_until_ms) values (?, 1, ?, 0)
  on conflict (email_hmac) do update set
    failures = case when ${T}.locked_until_ms > ? then ${T}.failures + 1
                    when ${T}.window_start_ms <= ? then 1
                    else ${T}.failures + 1 end,
    window_start_ms = case when ${T}.locked_until_ms > ? then ${T}.window_start_ms
                           when ${T}.window_start_ms <= ? then ?
                           else ${T}.window_start_ms end,
    locked_until_ms = case when ${T}.locked_until_ms > ? then ${T}.locked_until_ms
                           when ${T}.window_start_ms > ? and ${T}.failures + 1 > ? then ?
                           else 0 end
  returning failures, locked_until_ms`;

export function emailHmac(masterKey: Buffer, email: string): string {
  return crypto.createHmac('sha256', masterKey).update(`console-login-email:${email.trim().toLowerCase()}`).digest('hex');
}

/**
 * Counts a sign-in attempt on `email` before its password is checked. Answers the time the
 * email is locked until (ms) when it is, and then the password must not be checked at all;
 * justLocked for the attempt that locked it.
 */
export async function reserveAttempt(db: Knex, masterKey: Buffer, email: string, now = Date.now()): Promise<{ lockedUntilMs: number | null; justLocked: boolean }> {
  const windowStartedBefore = now - LOCK_WINDOW_MS;
  const row = await sqlOf(db).first<{ failures: number; locked_until_ms: number }>(RESERVE, [
    emailHmac(masterKey, email), now,
    now, windowStartedBefore,
    now, windowStartedBefore, now,
    now, windowStartedBefore, LOCK_AFTER, now + LOCK_MS,
  ]);
  const lockedUntil = Number(row!.locked_until_ms);
  // Attempts go on being counted while locked: the one that locked it is the only one at LOCK_AFTER + 1.
  return { lockedUntilMs: lockedUntil > now ? lockedUntil : null, justLocked: lockedUntil > now && Number(row!.failures) === LOCK_AFTER + 1 };
}

/** A successful sign-in: the email's count starts again. */
export async function clearAttempts(db: Knex, masterKey: Buffer, email: string): Promise<void> {
  await sqlOf(db).run(`delete from ${T} where email_hmac = ?`, [emailHmac(masterKey, email)]);
}
