/**
 * Stripe's wire as stripe-node speaks it: bracket form-encoding (`line_items[0][price_data][unit_amount]=…`,
 * `expand[]=…`), the error object `{error:{type,code,message,param}}`, and ids with type prefixes.
 */
import crypto from 'node:crypto';

/** API versions the simulator answers (the SDK's pinned one and its neighbours); any other is refused. */
export const KNOWN_VERSIONS = ['2026-10-28.endive', '2026-09-30.endive', '2026-07-29.dahlia'] as const;
/** From this version on, Checkout Sessions take allowed_payment_method_types instead of payment_method_types. */
export const isEndive = (version: string): boolean => version.endsWith('.endive');

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export function alnum(n: number): string {
  const bytes = crypto.randomBytes(n);
  let out = '';
  for (let i = 0; i < n; i++) out += ALNUM[bytes[i]! % ALNUM.length];
  return out;
}
export const newObjectId = (prefix: string, n = 24): string => `${prefix}_${alnum(n)}`;

export type ErrorType = 'invalid_request_error' | 'api_error' | 'authentication_error' | 'idempotency_error' | 'card_error' | 'rate_limit_error';

/**
 * A refusal in Stripe's shape. `executed`: raised after the request began to change state (the
 * idempotency layer saves it and replays it); validation errors are not saved (Stripe does the same).
 */
export class StripeWireError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    message: string,
    readonly code?: string,
    readonly param?: string,
    readonly executed = false,
  ) {
    super(message);
  }
  body(): { error: Record<string, string> } {
    const e: Record<string, string> = { type: this.type, message: this.message };
    if (this.code) e.code = this.code;
    if (this.param) e.param = this.param;
    if (this.code) e.doc_url = `https://docs.stripe.com/error-codes/${this.code.replace(/_/g, '-')}`;
    return { error: e };
  }
}

export const invalidParam = (param: string, message: string, code = 'parameter_invalid_string'): StripeWireError =>
  new StripeWireError(400, 'invalid_request_error', message, code, param);
export const missingParam = (param: string): StripeWireError =>
  new StripeWireError(400, 'invalid_request_error', `Missing required param: ${param}.`, 'parameter_missing', param);
export const unknownParam = (param: string): StripeWireError =>
  new StripeWireError(400, 'invalid_request_error', `Received unknown parameter: ${param}`, 'parameter_unknown', param);
export const noSuch = (what: string, id: string, param = 'id'): StripeWireError =>
  new StripeWireError(404, 'invalid_request_error', `No such ${what}: '${id.slice(0, 80)}'`, 'resource_missing', param);

export type FormValue = string | FormValue[] | { [k: string]: FormValue };

/**
 * Parses `a[b][0][c]=1&expand[]=x` into nested objects and arrays, as Stripe's API does. A key
 * given twice, or one that is both a value and an object, is refused with its name.
 */
export function parseForm(text: string): Record<string, FormValue> {
  const root: Record<string, FormValue> = Object.create(null);
  for (const [key, value] of new URLSearchParams(text)) {
    const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    if (!m) throw invalidParam(key.slice(0, 80), `Invalid parameter name: ${key.slice(0, 80)}`, 'parameter_invalid_string');
    const path = [m[1]!, ...[...m[2]!.matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1]!)];
    let node: any = root;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      const last = i === path.length - 1;
      const nextIsArray = !last && (path[i + 1] === '' || /^\d+$/.test(path[i + 1]!));
      if (Array.isArray(node)) {
        const idx = seg === '' ? node.length : Number(seg);
        if (!/^\d*$/.test(seg) || idx > 1000) throw invalidParam(key, `Invalid array index in ${key.slice(0, 80)}`);
        if (last) {
          node[idx] = value;
        } else {
          node[idx] ??= nextIsArray ? [] : Object.create(null);
          node = node[idx];
        }
        continue;
      }
      if (seg === '' || seg === '__proto__') throw invalidParam(key, `Invalid parameter name: ${key.slice(0, 80)}`);
      if (last) {
        if (Object.hasOwn(node, seg)) throw invalidParam(key, `Parameter ${key.slice(0, 80)} is given more than once`);
        node[seg] = value;
      } else {
        if (Object.hasOwn(node, seg) && typeof node[seg] !== 'object') throw invalidParam(key, `Parameter ${key.slice(0, 80)} mixes a value and an object`);
        node[seg] ??= nextIsArray ? [] : Object.create(null);
        node = node[seg];
      }
    }
  }
  return root;
}

/** Reads typed values from a parsed form, refusing with the bracketed param name. */
export class Params {
  private readonly used = new Set<string>();
  constructor(private readonly data: Record<string, FormValue>, private readonly prefix = '') {}
  private name(k: string) {
    return this.prefix ? `${this.prefix}[${k}]` : k;
  }
  has(k: string): boolean {
    return Object.hasOwn(this.data, k);
  }
  raw(k: string): FormValue | undefined {
    this.used.add(k);
    return Object.hasOwn(this.data, k) ? this.data[k] : undefined;
  }
  str(k: string, opts: { required?: boolean; max?: number } = {}): string | undefined {
    const v = this.raw(k);
    if (v === undefined) {
      if (opts.required) throw missingParam(this.name(k));
      return undefined;
    }
    if (typeof v !== 'string') throw invalidParam(this.name(k), `Invalid string: ${this.name(k)}`);
    if (opts.max !== undefined && v.length > opts.max) throw invalidParam(this.name(k), `${this.name(k)} must be at most ${opts.max} characters`);
    return v;
  }
  int(k: string, opts: { required?: boolean; min?: number; max?: number } = {}): number | undefined {
    const v = this.str(k, { required: opts.required });
    if (v === undefined) return undefined;
    if (!/^-?\d{1,15}$/.test(v)) throw invalidParam(this.name(k), `Invalid integer: ${v.slice(0, 40)}`, 'parameter_invalid_integer');
    const n = Number(v);
    if (opts.min !== undefined && n < opts.min) throw invalidParam(this.name(k), `This value must be greater than or equal to ${opts.min}.`, 'parameter_invalid_integer');
    if (opts.max !== undefined && n > opts.max) throw invalidParam(this.name(k), `This value must be less than or equal to ${opts.max}.`, 'parameter_invalid_integer');
    return n;
  }
  obj(k: string, opts: { required?: boolean } = {}): Params | undefined {
    const v = this.raw(k);
    if (v === undefined) {
      if (opts.required) throw missingParam(this.name(k));
      return undefined;
    }
    if (typeof v !== 'object' || Array.isArray(v)) throw invalidParam(this.name(k), `Invalid object: ${this.name(k)}`, 'parameter_invalid_empty');
    return new Params(v, this.name(k));
  }
  list(k: string): FormValue[] | undefined {
    const v = this.raw(k);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw invalidParam(this.name(k), `Invalid array: ${this.name(k)}`);
    return v;
  }
  strings(k: string): string[] | undefined {
    const v = this.list(k);
    if (v === undefined) return undefined;
    return v.map((x, i) => {
      if (typeof x !== 'string') throw invalidParam(`${this.name(k)}[${i}]`, `Invalid string: ${this.name(k)}[${i}]`);
      return x;
    });
  }
  /** metadata: ≤ 50 keys, key ≤ 40 characters without brackets, value ≤ 500 (docs.stripe.com/api/metadata). */
  metadata(k = 'metadata'): Record<string, string> {
    const m = this.obj(k);
    if (!m) return {};
    const out: Record<string, string> = {};
    const keys = m.keys();
    if (keys.length > 50) throw invalidParam(this.name(k), 'Metadata can have at most 50 keys');
    for (const key of keys) {
      if (key.length > 40) throw invalidParam(`${this.name(k)}[${key.slice(0, 40)}]`, 'Metadata keys must be at most 40 characters');
      out[key] = m.str(key, { max: 500 })!;
    }
    return out;
  }
  keys(): string[] {
    return Object.keys(this.data);
  }
  /** The first parameter given that the endpoint does not know. */
  rejectUnknown(): void {
    for (const k of Object.keys(this.data)) if (!this.used.has(k)) throw unknownParam(this.name(k));
  }
}
