import { describe, expect, it } from 'vitest';
import { newId } from '../../server/crypto.ts';

describe('object ids', () => {
  it('sort in the order they were made, also many within one millisecond', () => {
    const ids = Array.from({ length: 20_000 }, () => newId('evt'));
    // Far more ids than milliseconds passed: many share one.
    const perMs = new Set(ids.map((id) => id.slice(4, 12))).size;
    expect(perMs).toBeLessThan(ids.length / 2);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids.slice(0, 50)) expect(id).toMatch(/^evt_[0-9A-Za-z]{24}$/);
  });

  it('keep ~71 random bits after the time and sequence', () => {
    const a = newId('pay'), b = newId('pay');
    expect(a.slice(16)).not.toBe(b.slice(16));
  });
});
