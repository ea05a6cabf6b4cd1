/**
 * The console's statement upload form is multipart/form-data (a browser sends a file no other
 * way without script). This reads such a body, at most 20 MB, into its text fields (req.body, so
 * the console's CSRF check sees _csrf) and one file (req.file). RFC 7578; only what a browser's
 * form sends is understood: no nested multipart, no transfer encodings.
 */
import type { RequestHandler } from 'express';
import { ApiError } from '../errors.ts';

export interface UploadedFile {
  field: string;
  fileName: string;
  body: Buffer;
}

const MAX_BYTES = 20 * 1024 * 1024;

export const statementUploadBody: RequestHandler = (req, res, next) => {
  const type = req.get('content-type') ?? '';
  if (req.method !== 'POST' || !/^multipart\/form-data/i.test(type)) return next();
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
  if (!boundary) return next(new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'The form has no multipart boundary.'));
  const chunks: Buffer[] = [];
  let size = 0;
  let failed = false;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_BYTES) {
      if (!failed) next(new ApiError(413, 'invalid_request_error', 'file_too_large', 'A statement file may be at most 20 MB.'));
      failed = true;
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (failed) return;
    try {
      const { fields, file } = parseMultipart(Buffer.concat(chunks), boundary[1] ?? boundary[2]!);
      req.body = fields;
      (req as { file?: UploadedFile }).file = file;
      next();
    } catch (err) {
      next(err);
    }
  });
  req.on('error', (err) => {
    if (!failed) next(err);
    failed = true;
  });
};

export function parseMultipart(body: Buffer, boundary: string): { fields: Record<string, string>; file?: UploadedFile } {
  const delimiter = Buffer.from(`--${boundary}`);
  const fields: Record<string, string> = Object.create(null);
  let file: UploadedFile | undefined;
  let at = body.indexOf(delimiter);
  if (at < 0) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'The form body does not match its boundary.');
  for (let parts = 0; parts < 20; parts++) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString() === '--') break;
    const headerEnd = body.indexOf('\r\n\r\n', at);
    if (headerEnd < 0) break;
    const headers = body.subarray(at, headerEnd).toString('utf8');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headerEnd + 4);
    if (next < 0) break;
    const content = body.subarray(headerEnd + 4, next);
    const name = /name="([^"]*)"/i.exec(headers)?.[1] ?? '';
    const fileName = /filename="([^"]*)"/i.exec(headers)?.[1];
    if (fileName !== undefined) file ??= { field: name, fileName: fileName.replace(/[^\w.\-()\u4e00-\u9fff]/g, '_').slice(0, 200), body: Buffer.from(content) };
    else if (name && !(name in fields)) fields[name] = content.toString('utf8');
    at = next + 2;
  }
  return { fields, ...(file ? { file } : {}) };
}
