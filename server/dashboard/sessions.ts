import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Request, Response } from 'express';
import { sha256Hex } from '../crypto.ts';
import { bool } from '../db.ts';
import { isRole, type Role } from './roles.ts';

/**
 * Console sessions: a random 32-byte id lives only in the browser's cookie; the database keeps
 * its SHA-256, the app, the form token and the test/live switch. Sessions end after 8 h without
 * a request or 24 h after login, whichever comes first.
 */

/**
 * `__Host-` makes the browser refuse the cookie unless it is Secure, has Path=/ and no Domain, so
 * a sibling subdomain cannot plant or overwrite it. Browsers accept Secure cookies only over
 * HTTPS, with one exception: http://localhost (and 127.0.0.1) counts as secure in Chromium and
 * Firefox, so the console works on a developer's machine without TLS. Anywhere else, serve it
 * over HTTPS (PUBLIC_URL https://…); the login page says so when the cookie does not come back.
 */
export const SESSION_COOKIE = '__Host-checkstand_console';
/** Holds the login form's double-submit value before any session exists (login CSRF). */
export const LOGIN_COOKIE = '__Host-checkstand_console_login';

export const IDLE_MS = 8 * 3600_000;
export const MAX_AGE_MS = 24 * 3600_000;
/** last_seen is written at most once a minute: a write per page view would buy nothing. */
const TOUCH_EVERY_MS = 60_000;

export interface ConsoleSession {
  idHash: string;
  userId: string;
  appId: string;
  csrfToken: string;
  livemode: boolean;
  email: string;
  /** The user's role in the session's app, read on every request: a change applies at once. */
  role: Role;
}

const idPattern = /^[A-Za-z0-9_-]{43}$/;

/** One cookie from the Cookie header (no cookie-parser: the console reads two cookies). */
export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function setHostCookie(res: Response, name: string, value: string, maxAgeMs: number, sameSite: 'Lax' | 'Strict' = 'Lax'): void {
  res.append('Set-Cookie', `${name}=${value}; Path=/; Max-Age=${Math.floor(maxAgeMs / 1000)}; Secure; HttpOnly; SameSite=${sameSite}`);
}

export function clearHostCookie(res: Response, name: string): void {
  res.append('Set-Cookie', `${name}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax`);
}

/** Starts a session for a user who just proved their password; returns the cookie value. */
export async function createSession(db: Knex, user: { id: string; app_id: string }): Promise<string> {
  const id = crypto.randomBytes(32).toString('base64url');
  const now = Date.now();
  // Expired sessions go when someone logs in: no sweeper needed, and the table stays small.
  await db('console_sessions').where('last_seen_ms', '<', now - IDLE_MS).orWhere('created_ms', '<', now - MAX_AGE_MS).delete();
  await db('console_sessions').insert({
    id_hash: sha256Hex(id),
    user_id: user.id,
    app_id: user.app_id,
    csrf_token: crypto.randomBytes(32).toString('base64url'),
    livemode: false,
    created_ms: now,
    last_seen_ms: now,
  });
  return id;
}

/** The live session a cookie value names, touched; undefined when unknown or expired. */
export async function loadSession(db: Knex, cookieValue: string | undefined): Promise<ConsoleSession | undefined> {
  if (!cookieValue || !idPattern.test(cookieValue)) return undefined;
  const idHash = sha256Hex(cookieValue);
  const row = await db('console_sessions as s')
    .join('console_users as u', 'u.id', 's.user_id')
    .leftJoin('console_memberships as m', (j) => j.on('m.user_id', 's.user_id').andOn('m.app_id', 's.app_id'))
    .where('s.id_hash', idHash)
    .first('s.user_id', 's.app_id', 's.csrf_token', 's.livemode', 's.created_ms', 's.last_seen_ms', 'u.email', 'm.role');
  if (!row) return undefined;
  const now = Date.now();
  const lastSeen = Number(row.last_seen_ms);
  // A user removed from the app keeps no access to its data.
  if (now - lastSeen > IDLE_MS || now - Number(row.created_ms) > MAX_AGE_MS || !isRole(row.role)) {
    await db('console_sessions').where({ id_hash: idHash }).delete();
    return undefined;
  }
  if (now - lastSeen > TOUCH_EVERY_MS) await db('console_sessions').where({ id_hash: idHash }).update({ last_seen_ms: now });
  return { idHash, userId: row.user_id, appId: row.app_id, csrfToken: row.csrf_token, livemode: bool(row.livemode), email: row.email, role: row.role };
}

export async function destroySession(db: Knex, idHash: string): Promise<void> {
  await db('console_sessions').where({ id_hash: idHash }).delete();
}

export async function setSessionMode(db: Knex, idHash: string, livemode: boolean): Promise<void> {
  await db('console_sessions').where({ id_hash: idHash }).update({ livemode });
}

/** Opens another app in this session (its membership checked by the caller); the form token stays. */
export async function setSessionApp(db: Knex, idHash: string, appId: string): Promise<void> {
  await db('console_sessions').where({ id_hash: idHash }).update({ app_id: appId });
}
