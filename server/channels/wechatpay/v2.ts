/**
 * WeChat Pay API v2 on the wire, as the cash red-packet endpoints (/mmpaymkttransfers/…) speak it:
 * flat XML bodies (`<xml><field><![CDATA[…]]></field>…</xml>`, one level of nesting for lists
 * such as gethbinfo's hblist), the MD5 sign over the sorted non-empty fields with `&key=<v2 API
 * key>`, and a POST over mutual TLS with the merchant API certificate (apiclient_cert.pem).
 * Sources: pay.weixin.qq.com/doc/v2/merchant/4011974053 (sendredpack), 4011983160 (gethbinfo);
 * binarywang/WxJava util/SignUtils.java (the sign string). node:crypto and node:https only.
 */
import crypto from 'node:crypto';
import https from 'node:https';
import { MalformedMessageError } from '../../errors.ts';

// --- XML ---------------------------------------------------------------------------------------

/** One row of a nested list (`<hblist><hbinfo><openid>…</openid>…</hbinfo></hblist>`). */
export type XmlRow = Record<string, string>;
/** A v2 message: top-level fields are text; a field holding elements is a list of rows. */
export type XmlMessage = Record<string, string | XmlRow[]>;

/** Real v2 answers are a few KB; a larger body is refused before it is parsed. */
export const MAX_XML_BYTES = 64 * 1024;

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * `<xml>` with one element per non-empty field, text in CDATA (a `]]>` inside is split across two
 * sections); `lists` adds nested lists such as `<hblist><hbinfo>…</hbinfo></hblist>`.
 */
export function buildXml(fields: Record<string, string | number | undefined>, lists: Record<string, { row: string; rows: XmlRow[] }> = {}): string {
  const element = (k: string, v: string | number | undefined) => {
    if (v === undefined || v === '') return '';
    if (!NAME.test(k)) throw new RangeError(`not an XML field name: ${k}`);
    const text = String(v);
    return typeof v === 'number' || /^[A-Za-z0-9_.:-]*$/.test(text) ? `<${k}>${text}</${k}>` : `<${k}><![CDATA[${text.replace(/]]>/g, ']]]]><![CDATA[>')}]]></${k}>`;
  };
  const parts = ['<xml>'];
  for (const [k, v] of Object.entries(fields)) parts.push(element(k, v));
  for (const [k, { row, rows }] of Object.entries(lists)) {
    if (!NAME.test(k) || !NAME.test(row)) throw new RangeError(`not an XML field name: ${k}/${row}`);
    parts.push(`<${k}>`, ...rows.map((r) => `<${row}>${Object.entries(r).map(([c, v]) => element(c, v)).join('')}</${row}>`), `</${k}>`);
  }
  parts.push('</xml>');
  return parts.join('');
}

const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeText(raw: string): string {
  return raw.replace(/&(#x[0-9A-Fa-f]{1,6}|#[0-9]{1,7}|[A-Za-z]+);?/g, (whole, ref: string) => {
    if (!whole.endsWith(';')) throw new MalformedMessageError('XML has a bare & outside CDATA');
    if (ref.startsWith('#x')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(Number(ref.slice(1)));
    const ch = PREDEFINED[ref];
    // Only XML's five predefined entities exist here: a named one would need a DTD, which is refused.
    if (ch === undefined) throw new MalformedMessageError(`XML uses an undeclared entity &${ref.slice(0, 20)};`);
    return ch;
  });
}

interface Node {
  name: string;
  text: string;
  children: Node[];
}

/**
 * Parses a v2 message. Refuses (MalformedMessageError) a DOCTYPE or any other `<!` declaration
 * but CDATA (no DTD means no entity expansion, no external entities), processing instructions
 * other than the XML declaration, attributes-with-markup tricks, mismatched tags, more than
 * two levels below `<xml>`, and bodies over MAX_XML_BYTES.
 */
export function parseXml(body: string): XmlMessage {
  if (Buffer.byteLength(body, 'utf8') > MAX_XML_BYTES) throw new MalformedMessageError('XML body is larger than any WeChat Pay v2 message');
  let s = body.replace(/^\uFEFF/, '').trimStart();
  if (s.startsWith('<?xml')) {
    const end = s.indexOf('?>');
    if (end < 0) throw new MalformedMessageError('XML declaration is not closed');
    s = s.slice(end + 2);
  }
  if (/<!(?!\[CDATA\[)/.test(s)) throw new MalformedMessageError('XML with a DOCTYPE, entity or other declaration is refused');
  if (s.includes('<?')) throw new MalformedMessageError('XML processing instructions are refused');

  const root: Node = { name: '#root', text: '', children: [] };
  const stack: Node[] = [root];
  let i = 0;
  while (i < s.length) {
    const lt = s.indexOf('<', i);
    const top = stack[stack.length - 1]!;
    const textEnd = lt < 0 ? s.length : lt;
    if (textEnd > i) top.text += decodeText(s.slice(i, textEnd));
    if (lt < 0) break;
    if (s.startsWith('<![CDATA[', lt)) {
      const end = s.indexOf(']]>', lt + 9);
      if (end < 0) throw new MalformedMessageError('XML CDATA section is not closed');
      top.text += s.slice(lt + 9, end);
      i = end + 3;
      continue;
    }
    const gt = s.indexOf('>', lt);
    if (gt < 0) throw new MalformedMessageError('XML tag is not closed');
    const tag = s.slice(lt + 1, gt).trim();
    i = gt + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      if (stack.length < 2 || top.name !== name) throw new MalformedMessageError(`XML closes <${name.slice(0, 40)}> out of order`);
      stack.pop();
      continue;
    }
    const selfClosing = tag.endsWith('/');
    // v2 messages carry no attributes; anything after the name is ignored only if it is plain.
    const name = (selfClosing ? tag.slice(0, -1) : tag).trim().split(/\s+/)[0] ?? '';
    if (!NAME.test(name)) throw new MalformedMessageError(`XML has an unusable tag <${name.slice(0, 40)}>`);
    if (stack.length > 4) throw new MalformedMessageError('XML is nested deeper than any WeChat Pay v2 message');
    const node: Node = { name, text: '', children: [] };
    top.children.push(node);
    if (!selfClosing) stack.push(node);
  }
  if (stack.length !== 1) throw new MalformedMessageError('XML ends inside an element');
  if (root.children.length !== 1 || root.text.trim() !== '') throw new MalformedMessageError('XML must hold exactly one root element');
  const xml = root.children[0]!;
  if (xml.name !== 'xml') throw new MalformedMessageError(`XML root is <${xml.name.slice(0, 40)}>, not <xml>`);

  const out: XmlMessage = {};
  for (const field of xml.children) {
    if (Object.hasOwn(out, field.name)) throw new MalformedMessageError(`XML repeats the field ${field.name}`);
    if (field.children.length === 0) {
      out[field.name] = field.text;
      continue;
    }
    // A list: <hblist><hbinfo>…</hbinfo>…</hblist>, each row flat.
    out[field.name] = field.children.map((row) => {
      const r: XmlRow = {};
      for (const cell of row.children) {
        if (cell.children.length > 0) throw new MalformedMessageError('XML list rows must be flat');
        r[cell.name] = cell.text;
      }
      return r;
    });
  }
  return out;
}

/** The text fields of a message (lists left out): what the sign covers on our side. */
export function textFields(msg: XmlMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(msg)) if (typeof v === 'string') out[k] = v;
  return out;
}

// --- sign --------------------------------------------------------------------------------------

/** `k=v&…` over the non-empty fields but `sign`, sorted by name (ASCII), then `&key=<API key>`. */
export function v2SignString(fields: Record<string, string | number | undefined>, apiKey: string): string {
  const pairs = Object.entries(fields)
    .filter(([k, v]) => k !== 'sign' && v !== undefined && v !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  return `${pairs.join('&')}&key=${apiKey}`;
}

/** MD5 of the sign string, upper-case hex (the red-packet APIs take no sign_type: MD5 only). */
export function v2Sign(fields: Record<string, string | number | undefined>, apiKey: string): string {
  return crypto.createHash('md5').update(v2SignString(fields, apiKey), 'utf8').digest('hex').toUpperCase();
}

/** Whether `fields.sign` is the MD5 sign of the other fields; compared in constant time. */
export function verifyV2Sign(fields: Record<string, string>, apiKey: string): boolean {
  const given = fields.sign ?? '';
  if (!/^[0-9A-Fa-f]{32}$/.test(given)) return false;
  return crypto.timingSafeEqual(Buffer.from(given.toUpperCase(), 'ascii'), Buffer.from(v2Sign(fields, apiKey), 'ascii'));
}

// --- transport -----------------------------------------------------------------------------------

export interface MutualTls {
  /** The merchant API private key and certificate (apiclient_key.pem, apiclient_cert.pem), PEM. */
  key: string;
  cert: string;
  /** Extra CA to trust for the server (a simulator's); production uses the system roots. */
  ca?: string;
}

export type PostOutcome =
  | { kind: 'answer'; status: number; body: string }
  | { kind: 'timeout' }
  | { kind: 'unreachable'; code: string };

/**
 * POSTs an XML body over mutual TLS. Never throws: the caller decides what an absent answer
 * means. No connection reuse, so every call presents the certificate afresh.
 */
export function postXml(url: string, body: string, tlsOpts: MutualTls, timeoutMs: number): Promise<PostOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: PostOutcome) => {
      if (!settled) {
        settled = true;
        resolve(o);
      }
    };
    let req: ReturnType<typeof https.request>;
    try {
      req = https.request(url, {
        method: 'POST',
        agent: false,
        key: tlsOpts.key,
        cert: tlsOpts.cert,
        ...(tlsOpts.ca ? { ca: tlsOpts.ca } : {}),
        headers: { 'content-type': 'application/xml; charset=utf-8', 'content-length': Buffer.byteLength(body), 'user-agent': 'Checkstand/0.1 (WeChatPay-APIv2; node)', connection: 'close' },
        timeout: timeoutMs,
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_XML_BYTES) {
            req.destroy();
            done({ kind: 'answer', status: res.statusCode ?? 0, body: '' });
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => done({ kind: 'answer', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', () => done({ kind: 'unreachable', code: 'ECONNRESET' }));
      });
    } catch (err) {
      done({ kind: 'unreachable', code: (err as { code?: string }).code ?? 'EINVAL' });
      return;
    }
    req.on('timeout', () => {
      req.destroy();
      done({ kind: 'timeout' });
    });
    req.on('error', (err: NodeJS.ErrnoException) => done({ kind: 'unreachable', code: err.code ?? 'ERROR' }));
    req.end(body);
  });
}
