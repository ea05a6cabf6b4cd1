import type { RequestHandler } from 'express';
import { ApiError } from '../errors.ts';
import { findBadInput } from './input.ts';

/**
 * Reads a /v1 request body into req.body, always a plain JSON object: {} when the request has no
 * body. Every request that carries one must send JSON: a form or text body is refused naming
 * Content-Type here, once for every route, since a route reading it as {} would act on defaults
 * (a resend to every endpoint, a rotation keeping the old secret). Then the parameters must pass
 * findBadInput. Leaner than express.json on the API's hot path.
 */
export function jsonBody(limit: number): RequestHandler {
  return (req, _res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    req.body = {};
    // What Node itself counts as a body (as type-is's hasBody): chunked, or a non-zero length.
    const length = req.headers['content-length'];
    if (req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return next();
    const type = req.headers['content-type'];
    if (!type || !/^application\/json\s*(;|$)/i.test(type)) {
      return next(new ApiError(415, 'invalid_request_error', 'unsupported_media_type', 'Send the request body as JSON, with Content-Type: application/json.', 'Content-Type'));
    }
    const charset = /charset=["']?([\w-]+)/i.exec(type)?.[1]?.toLowerCase();
    if (charset && charset !== 'utf-8' && charset !== 'utf8') {
      return next(new ApiError(415, 'invalid_request_error', 'unsupported_charset', 'Send JSON as UTF-8.', 'Content-Type'));
    }
    if (Number(length ?? 0) > limit) return next(tooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        next(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', (err) => {
      if (!failed) {
        failed = true;
        next(err);
      }
    });
    req.on('end', () => {
      if (failed) return;
      let text: string;
      let body: unknown;
      try {
        // Fatal: Buffer's toString would turn bytes that are not UTF-8 into U+FFFD and store those.
        text = utf8.decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
      } catch {
        return next(new ApiError(400, 'invalid_request_error', 'parse_error', 'The request body is not valid UTF-8.'));
      }
      if (text.trim() === '') return next();
      try {
        body = JSON.parse(text);
      } catch {
        return next(new ApiError(400, 'invalid_request_error', 'parse_error', 'The request body is not valid JSON.'));
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        return next(new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'The request body must be a JSON object.'));
      }
      const bad = findBadInput(body as Record<string, unknown>);
      if (bad) return next(bad);
      req.body = body;
      next();
    });
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const tooLarge = () => new ApiError(413, 'invalid_request_error', 'body_too_large', 'The request body is too large.');
