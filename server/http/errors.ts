import type { ErrorRequestHandler, RequestHandler } from 'express';
import { z, ZodError } from 'zod';
import { ApiError, ChannelConfigError, ChannelRequestError, ChannelUnavailable, SignatureError } from '../errors.ts';
import type { Logger } from '../log.ts';

interface ErrorBody {
  type: string;
  code: string;
  message: string;
  param?: string;
  request_id: string;
}

/** The error object of DESIGN §2, as every /v1 error answers it. */
export const errorObjectSchema = z
  .object({
    error: z
      .object({
        type: z.enum(['invalid_request_error', 'authentication_error', 'idempotency_error', 'channel_error', 'api_error']),
        code: z.string(),
        message: z.string(),
        param: z.string().optional().describe('the parameter at fault, when there is one'),
        request_id: z.string(),
      })
      .strict(),
  })
  .strict()
  .meta({ id: 'Error' });

/** Turns a zod error into the API error naming the first bad parameter. */
export function fromZod(err: ZodError): ApiError {
  const issue = err.issues[0];
  const paramOf = (path: PropertyKey[]) => (path.length ? path.map((p, i) => (i === 0 ? String(p) : `[${String(p)}]`)).join('') : undefined);
  if (issue.code === 'unrecognized_keys') {
    const key = paramOf([...issue.path, issue.keys[0]])!;
    return new ApiError(400, 'invalid_request_error', 'parameter_unknown', `Received unknown parameter: ${key}`, key);
  }
  // A bad key of a record (metadata) is the record's fault, not a value's: name `metadata`,
  // with the key schema's own message rather than zod's "Invalid key in record".
  const keyIssue = issue.code === 'invalid_key';
  const param = paramOf(keyIssue ? issue.path.slice(0, -1) : issue.path);
  let message = keyIssue && issue.issues[0] ? issue.issues[0].message : issue.message;
  if (param) message = `Invalid ${param}: ${message}`;
  return new ApiError(400, 'invalid_request_error', issue.code === 'invalid_type' && /received undefined/.test(issue.message) ? 'parameter_missing' : 'parameter_invalid', message, param);
}

/** Maps anything thrown to {status, error}; unknown errors become a bland api_error (no stack trace). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ZodError) return fromZod(err);
  const e = err as { type?: string; status?: number; statusCode?: number; message?: string };
  // body-parser's own errors: malformed JSON, oversized bodies, wrong charset.
  if (e && e.type === 'entity.parse.failed') return new ApiError(400, 'invalid_request_error', 'parse_error', 'The request body is not valid JSON.');
  if (e && e.type === 'entity.too.large') return new ApiError(413, 'invalid_request_error', 'body_too_large', 'The request body is too large.');
  if (e && typeof e.type === 'string' && (e.status ?? e.statusCode ?? 500) < 500) {
    return new ApiError(e.status ?? 400, 'invalid_request_error', 'bad_request', e.message ?? 'Bad request.');
  }
  // The router's own 400 for a path parameter it cannot percent-decode (the console, the cashier).
  if (err instanceof URIError && e.status === 400) return new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'The URL is not valid percent-encoded UTF-8.');
  if (err instanceof ChannelConfigError) return new ApiError(400, 'channel_error', 'channel_not_configured', err.message);
  if (err instanceof ChannelUnavailable) return new ApiError(502, 'channel_error', 'channel_unavailable', 'The payment channel could not be reached. Try again.');
  if (err instanceof SignatureError) return new ApiError(502, 'channel_error', 'channel_signature_invalid', 'The payment channel answered with a signature that does not verify.');
  if (err instanceof ChannelRequestError) return new ApiError(402, 'channel_error', err.code, err.message);
  return new ApiError(500, 'api_error', 'internal_error', 'An internal error occurred.');
}

export function errorBody(err: ApiError, requestId: string): { error: ErrorBody } {
  const body: ErrorBody = { type: err.type, code: err.code, message: err.message, request_id: requestId };
  if (err.param) body.param = err.param;
  return { error: body };
}

/** The one error handler for /v1: the error object of DESIGN §2, never a stack trace. */
export function apiErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const apiErr = toApiError(err);
    const requestId = String(res.locals.requestId ?? '');
    if (apiErr.status >= 500) logger.error('request failed', { request_id: requestId, path: req.path, err });
    if (res.headersSent) return;
    res.status(apiErr.status).json(errorBody(apiErr, requestId));
  };
}

export const apiNotFound: RequestHandler = (req, _res, next) =>
  next(new ApiError(404, 'invalid_request_error', 'resource_missing', `Unrecognized request URL (${req.method}: ${req.path}).`));
