import type { Knex } from 'knex';
import { z } from 'zod';
import { newId, nowSeconds } from '../crypto.ts';
import { isUniqueViolation } from '../payments/repo.ts';
import type { Role } from './roles.ts';
import { checkPasswordStrength, DUMMY_PASSWORD_HASH, hashPassword, verifyPassword } from './password.ts';

/**
 * Console users; the email is the login name (stored lower-cased). A user opens the apps they
 * have a membership of (console_memberships, with a role); `app_id` is the one a login opens.
 */

export interface ConsoleUser {
  id: string;
  app_id: string;
  email: string;
}

export const emailSchema = z.string().trim().toLowerCase().max(254).pipe(z.email({ error: 'must be an email address' }));

export class ConsoleUserError extends Error {
  override name = 'ConsoleUserError';
}

/** Creates a console user for an app, its owner unless told otherwise (used by `checkstand user create`). */
export async function createConsoleUser(db: Knex, input: { email: string; appId: string; password: string; role?: Role }): Promise<ConsoleUser> {
  const parsed = emailSchema.safeParse(input.email);
  if (!parsed.success) throw new ConsoleUserError('--email must be an email address');
  const email = parsed.data;
  checkPasswordStrength(input.password);
  if (!(await db('apps').where({ id: input.appId }).first('id'))) throw new ConsoleUserError(`no such app: ${input.appId}`);
  const user = { id: newId('usr'), app_id: input.appId, email };
  try {
    const passwordHash = await hashPassword(input.password);
    await db.transaction(async (trx) => {
      await trx('console_users').insert({ ...user, password_hash: passwordHash, created: nowSeconds() });
      await trx('console_memberships').insert({ user_id: user.id, app_id: input.appId, role: input.role ?? 'owner', created_ms: Date.now() });
    });
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
  // The app of the first membership (the one they joined first); none left: no console access.
  const app = await firstAppOf(db, row.id, row.app_id);
  return app ? { id: row.id, app_id: app, email: row.email } : undefined;
}

/** The app a login opens: the user's first app while they still belong to it, else their oldest membership. */
export async function firstAppOf(db: Knex, userId: string, preferred?: string): Promise<string | undefined> {
  const rows = await db('console_memberships').where({ user_id: userId }).orderBy([{ column: 'created_ms' }, { column: 'app_id' }]).select('app_id');
  return (rows.find((r) => r.app_id === preferred) ?? rows[0])?.app_id;
}

export async function findConsoleUser(db: Knex, id: string): Promise<ConsoleUser | undefined> {
  const row = await db('console_users').where({ id }).first('id', 'app_id', 'email');
  return row ?? undefined;
}
