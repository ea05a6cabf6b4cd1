import type { RequestHandler } from 'express';
import { ApiError } from '../errors.ts';

/**
 * Reads an application/json request body into req.body, refusing more than `limit` bytes.
 * Leaner than express.json on the API's hot path; other content types are left unread so the
 * route can name Content-Type in its error.
 */
export function jsonBody(limit: number): RequestHandler {
  return (req, _res, next) => {
    const type = req.headers['content-type'];
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'DELETE' || !type || !/^application\/json\s*(;|$)/i.test(type)) return next();
    const charset = /charset=["']?([\w-]+)/i.exec(type)?.[1]?.toLowerCase();
    if (charset && charset !== 'utf-8' && charset !== 'utf8') {
      return next(new ApiError(415, 'invalid_request_error', 'unsupported_charset', 'Send JSON as UTF-8.', 'Content-Type'));
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) return next(tooLarge());
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
      const text = (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8');
      if (text.trim() === '') return next();
      try {
        req.body = JSON.parse(text);
      } catch {
        return next(new ApiError(400, 'invalid_request_error', 'parse_error', 'The request body is not valid JSON.'));
      }
      next();
    });
  };
}

const tooLarge = () => new ApiError(413, 'invalid_request_error', 'body_too_large', 'The request body is too large.');
