/** A small JSON-lines logger that scrubs secrets before anything is written. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const secretKey = /(private_?key|secret|password|apiv3_key|api_?key|authorization|sign(ature)?|token|master)/i;
const secretValue = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /\b(sk_(test|live)_)[A-Za-z0-9]+/g,
  /\bwhsec_[A-Za-z0-9+/=]+/g,
];

/** Replaces secret-looking fields and values; used for logs and stored channel transcripts. */
export function scrub(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[deep]';
  if (typeof value === 'string') {
    let s = value;
    for (const re of secretValue) s = s.replace(re, (_m, p1) => (p1 && p1.startsWith('sk_') ? `${p1}[redacted]` : '[redacted]'));
    return s;
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (value && typeof value === 'object') {
    if (value instanceof Error) return { name: value.name, message: scrub(value.message, depth + 1) };
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = secretKey.test(k) && v ? '[redacted]' : scrub(v, depth + 1);
    return out;
  }
  return value;
}

export function createLogger(level: LogLevel = 'info', write: (line: string) => void = (l) => process.stdout.write(l + '\n')): Logger {
  const at = order[level];
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (order[lvl] < at) return;
    write(JSON.stringify({ t: new Date().toISOString(), level: lvl, msg: scrub(msg), ...(fields ? (scrub(fields) as object) : {}) }));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
