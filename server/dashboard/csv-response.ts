import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Response } from 'express';
import type { Logger } from '../log.ts';

/**
 * Streams a CSV download (chunked, no Content-Length): each batch of `chunks` is read when the
 * client has taken the last. The first chunk is read before the headers go out, so a failing
 * query still gets an error page rather than a cut file. A client that goes away ends the read;
 * anything else that stops it is logged (the client sees an incomplete chunked response).
 */
export async function sendCsv(res: Response, chunks: AsyncGenerator<string>, filename: string, logger: Logger, what: string): Promise<void> {
  const first = await chunks.next();
  res.type('text/csv; charset=utf-8');
  res.set('Content-Disposition', `attachment; filename="${filename}"`);
  const body = Readable.from((async function* () {
    if (!first.done) yield first.value;
    yield* chunks;
  })());
  try {
    await pipeline(body, res);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') logger.error(`${what} CSV failed while streaming`, { error: String(err) });
  }
}
