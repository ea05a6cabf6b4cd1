/**
 * The simulators' statement download links: a token that names the merchant, the day and the
 * statement, expires like the channel's (Alipay: 30 s; WeChat: 30 s too in practice), and is
 * unforgeable without the master key. Shared by the Alipay and WeChat Pay simulators.
 */
import crypto from 'node:crypto';
import { timingSafeEqualStr } from '../crypto.ts';

export interface StatementTicket {
  /** The merchant at the simulator (Alipay app id, WeChat mchid). */
  m: string;
  /** Beijing date YYYY-MM-DD. */
  d: string;
  /** What to serve (trade, fundflow) and how (gzip). */
  k: string;
  z?: boolean;
  /** Unix seconds after which the link is dead. */
  e: number;
}

const mac = (masterKey: Buffer, payload: string) =>
  crypto.createHmac('sha256', masterKey).update(`sandbox-statement\n${payload}`).digest('base64url');

export function statementToken(masterKey: Buffer, ticket: StatementTicket): string {
  const payload = Buffer.from(JSON.stringify(ticket)).toString('base64url');
  return `${payload}.${mac(masterKey, payload)}`;
}

/** The ticket of a genuine, unexpired token; undefined otherwise. */
export function readStatementToken(masterKey: Buffer, token: string, nowSeconds = Math.floor(Date.now() / 1000)): StatementTicket | undefined {
  const [payload, sig] = token.split('.');
  if (!payload || !sig || !timingSafeEqualStr(sig, mac(masterKey, payload))) return undefined;
  try {
    const t = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as StatementTicket;
    return t.e >= nowSeconds ? t : undefined;
  } catch {
    return undefined;
  }
}

/** [start, end) unix seconds of a Beijing date; undefined for anything but a real YYYY-MM-DD. */
export function beijingDay(date: string): { start: number; end: number } | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return undefined;
  const ms = Date.parse(`${date}T00:00:00Z`);
  if (!Number.isFinite(ms) || new Date(ms).toISOString().slice(0, 10) !== date) return undefined;
  const start = ms / 1000 - 8 * 3600;
  return { start, end: start + 86_400 };
}

/** The simulators' fixed fee: 0.6% of each payment (and given back pro rata on a refund), rounded to the fen. */
export const SANDBOX_FEE_RATE = 0.006;
export const sandboxFee = (amount: number): number => Math.round(amount * SANDBOX_FEE_RATE);
