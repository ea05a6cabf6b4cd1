import type { Request } from 'express';
import { ApiError } from '../errors.ts';

/** The JSON object body of an API request; anything else is a clear 4xx. */
export function bodyOf(req: Request): Record<string, unknown> {
  const type = req.get('content-type');
  if (req.body === undefined) {
    if (type && !/^application\/json\b/i.test(type) && Number(req.get('content-length') ?? 0) > 0) {
      throw new ApiError(415, 'invalid_request_error', 'unsupported_media_type', 'Send the request body as application/json.', 'Content-Type');
    }
    return {};
  }
  if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
    throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'The request body must be a JSON object.');
  }
  return req.body as Record<string, unknown>;
}
