/** A browser stand-in: keeps cookies, sends Origin like a browser does, reads form tokens from pages. */
export class ConsoleClient {
  cookies = new Map<string, string>();
  lastSetCookies: string[] = [];
  constructor(readonly base: string) {}

  async request(method: string, path: string, opts: { form?: Record<string, string | string[]>; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...opts.headers };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (opts.form) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(opts.form)) for (const one of Array.isArray(v) ? v : [v]) params.append(k, one);
      body = params.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
      if (!('origin' in headers)) headers.origin = new URL(this.base).origin;
    }
    const res = await fetch(this.base + path, { method, headers, body, redirect: 'manual' });
    this.lastSetCookies = res.headers.getSetCookie();
    for (const c of this.lastSetCookies) {
      const [pair, ...attrs] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (attrs.some((a) => a.trim() === 'Max-Age=0') || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return { status: res.status, text: await res.text(), location: res.headers.get('location'), headers: res.headers };
  }
  get(path: string) {
    return this.request('GET', path);
  }
  post(path: string, form: Record<string, string | string[]>, headers?: Record<string, string>) {
    return this.request('POST', path, { form, headers });
  }
  /** The form token of a console page. */
  async tokenFrom(path: string): Promise<string> {
    const page = await this.get(path);
    const m = /name="_csrf" value="([^"]+)"/.exec(page.text);
    if (!m) throw new Error(`no form token on ${path} (status ${page.status})`);
    return m[1];
  }
  async login(email: string, password: string) {
    const token = await this.tokenFrom('/console/login');
    return this.post('/console/login', { _csrf: token, email, password });
  }
}
