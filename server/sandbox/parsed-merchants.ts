/**
 * The simulators read their merchant (sealed keys) on every request they serve; unsealing it and
 * parsing its RSA keys cost more than the request's signatures. A merchant row never changes
 * once written, so each sealed value is opened and parsed once per master key.
 */
const parsed = new WeakMap<Buffer, Map<string, unknown>>();
const MAX = 1000;

export function parsedMerchant<T>(masterKey: Buffer, sealed: string, open: () => T): T {
  let byValue = parsed.get(masterKey);
  if (!byValue) parsed.set(masterKey, (byValue = new Map()));
  const hit = byValue.get(sealed);
  if (hit !== undefined) return hit as T;
  const merchant = open();
  if (byValue.size >= MAX) byValue.clear();
  byValue.set(sealed, merchant);
  return merchant;
}
