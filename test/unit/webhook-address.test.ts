import { describe, expect, it } from 'vitest';
import { classifyAddress, classifyHost, isAddressAllowed, type AddressClass, type AddressPolicy } from '../../server/webhooks/address.ts';
import { checkWebhookUrl } from '../../server/webhooks/service.ts';
import { ApiError } from '../../server/errors.ts';

// The SSRF rule of DESIGN §4, applied by the delivery client to every address it connects to.

describe('classifyAddress', () => {
  it.each<[string, AddressClass]>([
    // IPv4
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['93.184.216.34', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.15.255.255', 'public'],
    ['172.32.0.0', 'public'],
    ['192.168.1.1', 'private'],
    ['192.169.0.1', 'public'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['100.63.255.255', 'public'],
    ['100.128.0.0', 'public'],
    ['100.100.100.200', 'metadata'],
    ['169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['169.254.1.1', 'link_local'],
    ['192.0.0.192', 'metadata'],
    ['192.0.0.8', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['198.51.100.1', 'reserved'],
    ['203.0.113.7', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['198.19.255.255', 'reserved'],
    ['198.20.0.0', 'public'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    // IPv6
    ['2606:4700:4700::1111', 'public'],
    ['2001:4860:4860::8888', 'public'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['[::1]', 'loopback'],
    ['fe80::1', 'link_local'],
    ['fe80::1%eth0', 'link_local'],
    ['febf::1', 'link_local'],
    ['fec0::1', 'private'],
    ['fc00::1', 'unique_local'],
    ['fd12:3456:789a::1', 'unique_local'],
    ['fd00:ec2::254', 'metadata'],
    ['FD00:EC2:0:0:0:0:0:254', 'metadata'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['2001::1', 'reserved'], // Teredo
    ['3fff::1', 'reserved'],
    ['100::1', 'reserved'],
    ['::7f00:1', 'reserved'], // IPv4-compatible, deprecated
    ['4000::1', 'reserved'], // outside 2000::/3
    ['64:ff9b:1::1', 'private'],
    // IPv6 carrying IPv4: judged by the IPv4 address
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::FFFF:169.254.169.254', 'metadata'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:8.8.8.8', 'public'],
    ['0:0:0:0:0:ffff:c0a8:0101', 'private'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['64:ff9b::8.8.8.8', 'public'],
    ['2002:7f00:1::1', 'loopback'], // 6to4 of 127.0.0.1
    ['2002:a9fe:a9fe::', 'metadata'],
    ['2002:0808:0808::1', 'public'],
  ])('%s is %s', (ip, cls) => {
    expect(classifyAddress(ip)).toBe(cls);
  });

  it('answers null for anything that is not an IP address', () => {
    for (const s of ['localhost', 'example.com', '', '1.2.3', '1.2.3.4.5', '256.1.1.1', ':::1', '[::1', 'gg::1']) expect(classifyAddress(s)).toBeNull();
  });
});

describe('isAddressAllowed', () => {
  const live: AddressPolicy = { livemode: true, allowPrivate: false };
  const test: AddressPolicy = { livemode: false, allowPrivate: false };
  const liveOp: AddressPolicy = { livemode: true, allowPrivate: true };
  const testOp: AddressPolicy = { livemode: false, allowPrivate: true };
  const table: Array<[AddressClass, boolean, boolean, boolean, boolean]> = [
    // class          live   test   live+op test+op
    ['public', true, true, true, true],
    ['loopback', false, true, true, true],
    ['private', false, false, true, true],
    ['unique_local', false, false, true, true],
    ['cgnat', false, false, true, true],
    ['link_local', false, false, false, false],
    ['metadata', false, false, false, false],
    ['multicast', false, false, false, false],
    ['unspecified', false, false, false, false],
    ['reserved', false, false, false, false],
  ];
  it.each(table)('%s: live %s, test %s, live with the operator setting %s, test with it %s', (cls, a, b, c, d) => {
    expect([isAddressAllowed(cls, live), isAddressAllowed(cls, test), isAddressAllowed(cls, liveOp), isAddressAllowed(cls, testOp)]).toEqual([a, b, c, d]);
  });
});

describe('classifyHost', () => {
  it('knows the local and metadata names without DNS, and leaves other names to connect time', () => {
    expect(classifyHost('localhost')).toBe('loopback');
    expect(classifyHost('LOCALHOST.')).toBe('loopback');
    expect(classifyHost('shop.localhost')).toBe('loopback');
    expect(classifyHost('metadata.google.internal')).toBe('metadata');
    expect(classifyHost('[::ffff:127.0.0.1]')).toBe('loopback');
    expect(classifyHost('shop.example.com')).toBeNull();
  });
});

describe('checkWebhookUrl', () => {
  const refused = (url: string, policy: AddressPolicy) => {
    try {
      checkWebhookUrl(url, policy);
      return false;
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      expect(err).toMatchObject({ status: 400, code: 'url_not_allowed', param: 'url' });
      return true;
    }
  };
  const live = { livemode: true, allowPrivate: false };
  const test = { livemode: false, allowPrivate: false };

  it('applies the delivery rule to literals and well-known names at registration', () => {
    // The WHATWG parser turns odd IPv4 spellings into dotted quads first.
    for (const url of ['http://2130706433/', 'http://0x7f.1/', 'http://017700000001/', 'http://[::ffff:7f00:1]/', 'http://localhost:3000/', 'http://127.1/']) {
      expect(refused(url, live)).toBe(true);
      expect(refused(url, test)).toBe(false);
    }
    for (const url of ['http://169.254.169.254/', 'http://[fd00:ec2::254]/', 'http://100.100.100.200/', 'http://metadata.google.internal/', 'http://0.0.0.0:8080/']) {
      expect(refused(url, test)).toBe(true);
      expect(refused(url, { livemode: true, allowPrivate: true })).toBe(true);
    }
    expect(refused('http://10.0.0.5/h', test)).toBe(true);
    expect(refused('http://10.0.0.5/h', { livemode: false, allowPrivate: true })).toBe(false);
    expect(refused('https://shop.example.com/h', live)).toBe(false);
    expect(refused('https://8.8.8.8/h', live)).toBe(false);
  });
});
