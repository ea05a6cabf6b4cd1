/**
 * HTTP face of the UnionPay simulator, mounted at /sandbox/unionpay: the front trans the
 * browser posts (payer page), the back-end APIs (queryTrans.do, backTransReq.do, and the file
 * transfer of settlement files at /filedownload/) answering raw signed `k=v`, and the
 * payer-action endpoint the page's buttons (and act()) post to.
 */
import express, { type Request, type Response } from 'express';
import type { SandboxDeps } from '../types.ts';
import { timingSafeEqualStr } from '../../crypto.ts';
import { rawResponseOf } from '../../channels/unionpay/sign.ts';
import { authenticate, backTrans, findTxn, openConsume, payerToken, queryTrans, settleConsume } from './gateway.ts';
import { ensureCa } from './store.ts';
import { notifyFields, notifyModeOf, respMsgOf, sendNotify, signedAnswer } from './notify.ts';
import type { SandboxTxn } from './store.ts';
import { fileTransfer } from './statement.ts';

export function createUnionpaySandboxRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();
  router.use(express.urlencoded({ extended: false, limit: '64kb' }));
  router.use(express.json({ limit: '16kb' }));
  router.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });

  router.post('/gateway/api/frontTransReq.do', async (req, res) => {
    const fields = formFields(req);
    if (!fields) return renderResult(res, 400, 'error', { code: '10', message: `${respMsgOf('10')} a field was sent twice` });
    const auth = await authenticate(deps, fields);
    if (!auth.ok) {
      deps.logger.warn('unionpay sandbox refused a front trans', { mer_id: fields.merId, code: auth.code });
      return renderResult(res, 400, 'error', { code: auth.code, message: auth.message });
    }
    const opened = await openConsume(deps, auth.merchant, fields);
    if (!opened.ok) return renderResult(res, 400, 'error', { code: opened.code, message: opened.message });
    const t = opened.txn;
    res.render('sandbox/unionpay-pay', {
      cspNonce: res.locals.cspNonce ?? '',
      actionUrl: `${req.baseUrl}/payer/action`,
      merId: t.merId, orderId: t.orderId, txnTime: t.txnTime, queryId: t.queryId,
      token: payerToken(deps.masterKey, t.merId, t.orderId, t.txnTime),
      amount: yuan(t.amount),
      mobile: t.data.channelType === '08',
      payTimeout: fields.payTimeout ?? '',
    });
  });

  const api = (run: typeof queryTrans) => async (req: Request, res: Response) => {
    const fields = formFields(req);
    const send = (body: string) => res.status(200).type('text/plain; charset=UTF-8').send(body);
    // UnionPay leaves answers to requests it cannot attribute unsigned.
    if (!fields) return send(rawResponseOf({ respCode: '10', respMsg: `${respMsgOf('10')} a field was sent twice` }));
    const auth = await authenticate(deps, fields);
    if (!auth.ok) return send(rawResponseOf({ respCode: auth.code, respMsg: auth.message }));
    const answer = await run(deps, auth.merchant, fields);
    send(signedAnswer(await ensureCa(deps.db, deps.masterKey), answer));
  };
  router.post('/gateway/api/queryTrans.do', api(queryTrans));
  router.post('/gateway/api/backTransReq.do', api(backTrans));
  // The file host (filedownload.95516.com/ at UnionPay): the settlement files of a day (statement.ts).
  router.post('/filedownload/', api(fileTransfer));

  router.post('/payer/action', async (req, res) => {
    const wantsJson = Boolean(req.is('application/json')) || /application\/json/i.test(req.get('accept') ?? '');
    const b = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
    const field = (name: string) => (typeof b[name] === 'string' ? (b[name] as string) : '');
    const refuse = (status: number, code: string, message: string) =>
      wantsJson ? res.status(status).json({ ok: false, error: { code, message } }) : renderResult(res, status, 'error', { code, message });
    const [merId, orderId, txnTime, action] = [field('mer_id'), field('order_id'), field('txn_time'), field('action')];
    const token = field('t');
    if (!merId || !orderId || !txnTime || !token || !timingSafeEqualStr(token, payerToken(deps.masterKey, merId, orderId, txnTime))) {
      return refuse(403, 'INVALID_TOKEN', '无效的支付请求 · This payment link is not valid');
    }
    if (action !== 'pay' && action !== 'fail' && action !== 'cancel') return refuse(400, 'INVALID_ACTION', 'action must be pay, fail or cancel');
    const txn = await findTxn(deps.db, merId, orderId, txnTime);
    if (!txn || txn.txnType !== '01') return refuse(404, '34', `${respMsgOf('34')} (the order exists once its form was posted)`);
    const mode = notifyModeOf(b.notify ?? b.notify_mode, b.notify_delay);

    if (action === 'cancel') {
      if (wantsJson) return res.json({ ok: true, status: txn.status });
      // Back to the merchant without a result: its return page asks UnionPay.
      return res.redirect(303, txn.data.frontUrl!);
    }
    const settled = await settleConsume(deps, txn, action);
    if (!settled.ok) return refuse(409, settled.code, settled.message);
    const ca = await ensureCa(deps.db, deps.masterKey);
    // Back notifies are sent for successful front transactions only.
    if (action === 'pay' && settled.changed) await sendNotify(settled.txn.data.backUrl, notifyFields(ca, settled.txn), mode, deps.logger);
    if (wantsJson) return res.json({ ok: true, status: settled.txn.status, query_id: settled.txn.queryId });
    if (action === 'fail') return renderResult(res, 200, 'failed', { message: `${respMsgOf('01')} 支付失败 · Payment failed`, link: txn.data.frontUrl });
    renderFrontNotify(res, settled.txn, notifyFields(ca, settled.txn));
  });

  return router;
}

/** The POST body's fields; undefined when one is repeated or not a string. */
function formFields(req: Request): Record<string, string> | undefined {
  const out: Record<string, string> = Object.create(null);
  if (!req.body || typeof req.body !== 'object') return out;
  for (const [k, v] of Object.entries(req.body as Record<string, unknown>)) {
    if (typeof v !== 'string') return undefined;
    out[k] = v;
  }
  return out;
}

const yuan = (fen: number) => `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;

/** After paying, the browser posts the signed result to frontUrl (auto-submitted, with a visible button). */
function renderFrontNotify(res: Response, txn: SandboxTxn, fields: Record<string, string>): void {
  res.render('sandbox/unionpay-result', {
    cspNonce: res.locals.cspNonce ?? '', kind: 'paid', code: '', message: `支付成功 · Paid ¥${yuan(txn.amount)}`,
    link: '', frontUrl: txn.data.frontUrl ?? '', fields,
  });
}

function renderResult(res: Response, status: number, kind: 'paid' | 'failed' | 'error', info: { code?: string; message: string; link?: string }): void {
  res.status(status).render('sandbox/unionpay-result', { cspNonce: res.locals.cspNonce ?? '', kind, code: info.code ?? '', message: info.message, link: info.link ?? '', frontUrl: '', fields: {} });
}
