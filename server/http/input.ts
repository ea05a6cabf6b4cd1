import type { RequestHandler } from 'express';
import { ApiError } from '../errors.ts';

/**
 * Checks every /v1 request's input, before any route reads it, for what no parameter may hold:
 * text the database cannot store, keys that reach an object's prototype, nesting no parameter
 * has. One check here rather than one per field, so a new parameter is covered the day it lands.
 */

// PostgreSQL refuses NUL in text ("invalid byte sequence for encoding UTF8: 0x00"); a lone UTF-16
// surrogate has no UTF-8 form, so the driver would store U+FFFD instead. SQLite would take both,
// and the two databases must answer alike. (isWellFormed: Node 20+, not yet in TypeScript's ES2022 lib.)
const isWellFormed = (s: string) => (s as string & { isWellFormed(): boolean }).isWellFormed();

/** Why the text cannot be stored, or undefined when it can. */
export function unstorableText(s: string): string | undefined {
  if (s.includes('\u0000')) return 'must not contain NUL characters (U+0000)';
  if (!isWellFormed(s)) return 'must be valid Unicode text (it holds a lone UTF-16 surrogate)';
  return undefined;
}

// JSON.parse makes "__proto__" an own property; assigning it on (zod's records, Object.assign,
// obj[key] = v) sets the prototype instead and the key vanishes. None is a real parameter or key.
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

// No parameter nests deeper than metadata[key] or enabled_events[i]; the cap also keeps the
// recursive code behind this (idempotency's canonical form, zod) far from the stack's limit.
const MAX_DEPTH = 5;

type Path = Array<string | number>;
const paramOf = (path: Path) => path.map((p, i) => (i === 0 ? String(p) : `[${String(p)}]`)).join('');
const invalidParam = (path: Path, message: string) => {
  const param = paramOf(path);
  return new ApiError(400, 'invalid_request_error', 'parameter_invalid', `Invalid ${param}: ${message}`, param);
};
const unknownParam = (key: string) => new ApiError(400, 'invalid_request_error', 'parameter_unknown', `Received unknown parameter: ${key}`, key);

/**
 * The first thing in a parsed body or query that no parameter may hold, as the 400 naming it:
 * `subject`, `metadata[note]` for a value, `metadata` for one of its keys.
 */
export function findBadInput(root: Record<string, unknown>): ApiError | undefined {
  return walk(root, []);
}

function walk(value: unknown, path: Path): ApiError | undefined {
  if (typeof value === 'string') {
    const why = unstorableText(value);
    return why ? invalidParam(path, why) : undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (path.length >= MAX_DEPTH) return invalidParam(path.slice(0, 1), 'is nested too deeply');
  // One path array, pushed and popped: a copy per value would cost more than the checks.
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      const bad = walk(value[i], path);
      path.pop();
      if (bad) return bad;
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    // A key nobody can store or that reaches the prototype: at the top it is no parameter we
    // have; inside an object it is refused naming that object (a key is no place to put a value).
    const unstorable = unstorableText(key);
    if (unstorable || PROTOTYPE_KEYS.has(key)) {
      if (path.length === 0) return unknownParam(key);
      return invalidParam(path, unstorable ? `keys ${unstorable}` : `must not have a key named ${key}`);
    }
    path.push(key);
    const bad = walk((value as Record<string, unknown>)[key], path);
    path.pop();
    if (bad) return bad;
  }
  return undefined;
}

const METHODS_WITHOUT_QUERY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * The URL's share of the check: each path segment must decode to storable text (every /v1 path
 * parameter is an id, so a bad one is named `id`), and the query must pass findBadInput. A
 * request with a body takes its parameters from the body only: a query parameter there would be
 * ignored, so it is refused as unknown.
 */
export const checkUrlInput: RequestHandler = (req, _res, next) => {
  for (const segment of req.path.split('/')) {
    if (!segment.includes('%')) continue;
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return next(new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Invalid id: the URL is not valid percent-encoded UTF-8.', 'id'));
    }
    const why = unstorableText(decoded);
    if (why) return next(new ApiError(400, 'invalid_request_error', 'parameter_invalid', `Invalid id: ${why}.`, 'id'));
  }
  if (!req.url.includes('?')) return next();
  const query = req.query as Record<string, unknown>;
  const bad = findBadInput(query);
  if (bad) return next(bad);
  if (METHODS_WITHOUT_QUERY.has(req.method)) {
    const key = Object.keys(query)[0];
    if (key !== undefined) return next(unknownParam(key));
  }
  next();
};
