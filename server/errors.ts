/** Error types; one handler (http/errors.ts) turns them into the API error object. */
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'idempotency_error'
  | 'channel_error'
  | 'api_error';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    readonly code: string,
    message: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

export const invalid = (code: string, message: string, param?: string, status = 400) =>
  new ApiError(status, 'invalid_request_error', code, message, param);

export const notFound = (what: string, id: string, param = 'id') =>
  new ApiError(404, 'invalid_request_error', 'resource_missing', `No such ${what}: '${id}'`, param);

/** A channel's credentials are missing or unusable. */
export class ChannelConfigError extends Error {
  override name = 'ChannelConfigError';
}

/** A channel message whose signature (or decryption) does not verify. */
export class SignatureError extends Error {
  override name = 'SignatureError';
}

/** A channel message that is not of the channel's shape (missing fields, wrong content type). */
export class MalformedMessageError extends Error {
  override name = 'MalformedMessageError';
}

/** The channel could not be reached or answered with a fault (5xx, timeout, garbage). */
export class ChannelUnavailable extends Error {
  override name = 'ChannelUnavailable';
}

/** The channel refused a request in a way that is not a payer's decline (bad parameters, unknown order). */
export class ChannelRequestError extends Error {
  override name = 'ChannelRequestError';
  constructor(readonly code: string, message: string) {
    super(message);
  }
}
