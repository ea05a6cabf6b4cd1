import { describe, expect, it } from 'vitest';
import { originSchema, parseOrigin } from '../../server/apps/origins.ts';

describe('parseOrigin (app service, console keys page, CLI --origin)', () => {
  it('normalises origins as browsers send them', () => {
    expect(parseOrigin('https://shop.example')).toEqual({ ok: true, origin: 'https://shop.example' });
    expect(parseOrigin(' HTTPS://Shop.Example/ ')).toEqual({ ok: true, origin: 'https://shop.example' });
    expect(parseOrigin('https://shop.example:443')).toEqual({ ok: true, origin: 'https://shop.example' });
    expect(parseOrigin('http://[::1]:8080')).toEqual({ ok: true, origin: 'http://[::1]:8080' });
    expect(parseOrigin('https://bücher.example')).toEqual({ ok: true, origin: 'https://xn--bcher-kva.example' });
  });

  it('refuses anything else without throwing, saying why and what an origin looks like', () => {
    const cases: Array<[string, string]> = [
      ['', 'empty'],
      ['not a url', 'no http:// or https://'],
      ['null', 'no http:// or https://'],
      ['ftp://shop.example', 'scheme ftp:'],
      ['javascript:alert(1)', 'scheme javascript:'],
      ['https:/shop.example', 'does not start with https://'],
      ['https://', 'host is not valid'],
      ['http://[::1', 'host [::1 is not valid'],
      ['https://a b.example', 'host a b.example is not valid'],
      ['https://shop.example/path', 'path, query or fragment (/path)'],
      ['https://shop.example?', 'path, query or fragment (?)'],
      ['https://shop.example\\x', 'path, query or fragment'],
      ['https://user:pw@shop.example', 'user name'],
    ];
    for (const [value, why] of cases) {
      const parsed = parseOrigin(value);
      expect(parsed.ok, value).toBe(false);
      if (parsed.ok) continue;
      expect(parsed.reason, value).toContain(why);
      expect(parsed.reason).toContain('such as https://shop.example.com');
    }
  });

  it('as a schema, names the value', () => {
    const r = originSchema.safeParse('not a url');
    expect(r.success).toBe(false);
    expect(r.error?.issues[0].message).toMatch(/^"not a url" is not an origin: /);
    expect(originSchema.parse('https://Shop.example/')).toBe('https://shop.example');
  });
});
