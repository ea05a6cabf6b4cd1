import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ejs from 'ejs';

const VIEWS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../views');

/**
 * The cashier's templates, compiled once each. They are compiled without EJS's default
 * `with (locals)` block, whose dynamic scope makes every name a template reads a slow lookup;
 * the names below are declared instead (a name missing here is a ReferenceError the tests catch).
 */
const LOCALS = [
  'lang', 't', 'otherLang', 'langQuery', 'amountText', 'now', 'parentOrigin', 'query', 'payment', 'appName', 'cspNonce',
  'env', 'channels', 'qrChannels', 'formToken', 'error', 'kind', 'returnUrl', 'svg', 'channel', 'qrExpiresAt', 'scanUrl',
  'params', 'sandboxUrl', 'action', 'title',
];

export type CashierView = 'cashier' | 'cashier-qr' | 'cashier-inapp' | 'cashier-form' | 'result';

export function createCashierViews(viewsDir = VIEWS): (view: CashierView, locals: Record<string, unknown>) => string {
  const compiled = new Map<string, ejs.TemplateFunction>();
  return (view, locals) => {
    let fn = compiled.get(view);
    if (!fn) {
      const filename = path.join(viewsDir, `${view}.ejs`);
      fn = ejs.compile(fs.readFileSync(filename, 'utf8'), {
        filename,
        root: viewsDir,
        // The partials (views/partials) are compiled with these options too and kept in EJS's cache.
        cache: true,
        _with: false,
        destructuredLocals: LOCALS,
      });
      compiled.set(view, fn);
    }
    return fn(locals);
  };
}
