/**
 * The one parser of the web origins an app registers (the sites that may embed the cashier):
 * used by the app service, the console's keys page and the CLI's --origin, so all three accept
 * and refuse the same values with the same words.
 */
import { z } from 'zod';

/** What every refusal says an origin looks like. */
export const ORIGIN_SHAPE = 'an origin is scheme://host[:port] with nothing after it, such as https://shop.example.com';

export type ParsedOrigin = { ok: true; origin: string } | { ok: false; reason: string };

/**
 * An origin as browsers send it in `Origin` (lower-case, punycode host, default port dropped),
 * or why the value is not one. Never throws, whatever the input.
 */
export function parseOrigin(value: string): ParsedOrigin {
  const v = value.trim();
  const no = (why: string): ParsedOrigin => ({ ok: false, reason: `${why}; ${ORIGIN_SHAPE}` });
  if (!v) return no('it is empty');
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(v)?.[1]?.toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return no(scheme ? `the scheme ${scheme}: is not http or https` : 'it has no http:// or https://');
  // The raw text decides the shape, not the parsed URL: URL() forgives "https:/a.example" and
  // "https://a.example?" (an empty search), which no browser sends as an Origin.
  const parts = /^[a-z]+:\/\/([^/?#\\]*)(.*)$/is.exec(v);
  if (!parts) return no(`it does not start with ${scheme}://`);
  if (parts[2] !== '' && parts[2] !== '/') return no(`it has a path, query or fragment (${parts[2].slice(0, 60)})`);
  if (parts[1].includes('@')) return no('it has a user name');
  if (!URL.canParse(v)) return no(`${parts[1] ? `the host ${parts[1].slice(0, 60)}` : 'the host'} is not valid`);
  return { ok: true, origin: new URL(v).origin };
}

/** parseOrigin as a zod schema (for API-style input): the value becomes the normalised origin. */
export const originSchema = z.string().transform((v, ctx) => {
  const parsed = parseOrigin(v);
  if (parsed.ok) return parsed.origin;
  ctx.addIssue({ code: 'custom', message: `"${v.slice(0, 100)}" is not an origin: ${parsed.reason}` });
  return z.NEVER;
});
