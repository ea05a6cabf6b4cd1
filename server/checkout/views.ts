import fs from 'node:fs';
import path from 'node:path';
import ejs from 'ejs';
import { ROOT } from '../root.ts';

const VIEWS = path.join(ROOT, 'views');

/**
 * The cashier's templates, compiled once each. Two things EJS does by default cost more than the
 * page itself: the `with (locals)` block, whose dynamic scope makes every name a template reads
 * a slow lookup (the names below are declared instead; a name missing here is a ReferenceError
 * the tests catch), and includes that copy the options and the data and resolve the path on
 * every render (here an include is a call to the partial's compiled function).
 */
const LOCALS = [
  'lang', 't', 'otherLang', 'langQuery', 'amountText', 'countdownText', 'parentOrigin', 'query', 'payment', 'appName', 'cspNonce',
  'env', 'channels', 'qrChannels', 'formToken', 'error', 'kind', 'returnUrl', 'svg', 'channel', 'qrExpiresAt', 'scanUrl',
  'params', 'sandboxUrl', 'action', 'title', 'notice', 'watchQuery', 'choiceUrl', 'refreshUrl', 'confirmUrl', 'walletQr',
  'balanceOption', 'topUpFor', 'couponEntry', 'discountText', 'installmentsView',
];

export type CashierView = 'cashier' | 'cashier-qr' | 'cashier-inapp' | 'cashier-form' | 'cashier-top' | 'result';

type Locals = Record<string, unknown>;
type Compiled = (locals: Locals, escape: (s: unknown) => string, include: (file: string, extra?: Locals) => string) => string;

export function createCashierViews(viewsDir = VIEWS): (view: CashierView, locals: Locals) => string {
  const compiled = new Map<string, Compiled>();
  function template(name: string): Compiled {
    let fn = compiled.get(name);
    if (!fn) {
      const filename = path.join(viewsDir, `${name}.ejs`);
      fn = ejs.compile(fs.readFileSync(filename, 'utf8'), { filename, client: true, _with: false, destructuredLocals: LOCALS }) as unknown as Compiled;
      compiled.set(name, fn);
    }
    return fn;
  }
  function run(name: string, locals: Locals): string {
    // Includes are written from the views root: include('/partials/head', { title }).
    return template(name)(locals, ejs.escapeXML, (file, extra) => run(file.replace(/^\/+/, ''), extra ? { ...locals, ...extra } : locals));
  }
  return run;
}
