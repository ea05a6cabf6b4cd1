import type { Knex } from 'knex';
import { z } from 'zod';
import { newId, nowSeconds } from '../crypto.ts';
import { isUniqueViolation } from '../payments/repo.ts';
import { checkPasswordStrength, DUMMY_PASSWORD_HASH, hashPassword, verifyPassword } from './password.ts';

/** Console users: one app each; the email is the login name (stored lower-cased). */

export interface ConsoleUser {
  id: string;
  app_id: string;
  email: string;
}

export const emailSchema = z.string().trim().toLowerCase().max(254).pipe(z.email({ error: 'must be an email address' }));

export class ConsoleUserError extends Error {
  override name = 'ConsoleUserError';
}

/** Creates a console user for an app (used by `checkstand user create`). */
export async function createConsoleUser(db: Knex, input: { email: string; appId: string; password: string }): Promise<ConsoleUser> {
  const parsed = emailSchema.safeParse(input.email);
  if (!parsed.success) throw new ConsoleUserError('--email must be an email address');
  const email = parsed.data;
  checkPasswordStrength(input.password);
  if (!(await db('apps').where({ id: input.appId }).first('id'))) throw new ConsoleUserError(`no such app: ${input.appId}`);
  const user = { id: newId('usr'), app_id: input.appId, email };
  try {
    await db('console_users').insert({ ...user, password_hash: await hashPassword(input.password), created: nowSeconds() });
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConsoleUserError(`a console user with the email ${email} already exists`);
    throw err;
  }
  return user;
}

/**
 * The user with this email and password, or undefined. An unknown email still runs one scrypt
 * verification (against a dummy hash), so both failures take the same time.
 */
export async function authenticate(db: Knex, email: string, password: string): Promise<ConsoleUser | undefined> {
  const parsed = emailSchema.safeParse(email);
  const row = parsed.success ? await db('console_users').where({ email: parsed.data }).first('id', 'app_id', 'email', 'password_hash') : undefined;
  const ok = await verifyPassword(password, row?.password_hash ?? DUMMY_PASSWORD_HASH);
  if (!row || !ok) return undefined;
  return { id: row.id, app_id: row.app_id, email: row.email };
}

export async function findConsoleUser(db: Knex, id: string): Promise<ConsoleUser | undefined> {
  const row = await db('console_users').where({ id }).first('id', 'app_id', 'email');
  return row ?? undefined;
}
