import type { Request } from 'express';
import { z } from 'zod';
import { fromZod } from './errors.ts';

/** The JSON object body of an API request: jsonBody has refused anything else; {} when there is none. */
export function bodyOf(req: Request): Record<string, unknown> {
  return (req.body ?? {}) as Record<string, unknown>;
}

/** Parses a request's parameters (body or query) with a strict schema; a failure is the 400 naming the parameter. */
export function paramsOf<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw fromZod(r.error);
  return r.data;
}

/** For routes that take no parameters: any parameter sent is refused as unknown. */
export const noParams = z.object({}).strict();
