/**
 * The Alipay simulator's fund-out orders (sandbox_alipay_fund_transfers, migration 037). A
 * transfer to an Alipay account is paid the moment Alipay accepts it, so the row is inserted
 * already SUCCESS with paid_count 1: the conditional insert is the payment, and of concurrent
 * identical requests only the one whose insert wins pays.
 */
import type { Knex } from 'knex';
import { parseJson } from '../../db.ts';

const TABLE = 'sandbox_alipay_fund_transfers';

/** uni.transfer's statuses (DEALING and REFUND only occur for bank-card payees, which the simulator does not offer). */
export type FundStatus = 'SUCCESS' | 'FAIL' | 'DEALING' | 'REFUND';

/** What a transfer keeps beside its columns. Times are unix seconds. */
export interface FundTransferData {
  productCode: string;
  bizScene: string;
  orderTitle: string;
  payee: { identity: string; identityType: string; name?: string };
  remark?: string;
  businessParams?: string;
  /** Digest of the request's terms: a repeat with the same terms gets this transfer, other terms are refused. */
  terms: string;
  transDate: number;
  payDate?: number;
  errorCode?: string;
  failReason?: string;
  /** One notify_id per transfer for its order.changed message; retries repeat it. */
  notifyId: string;
}

export interface SandboxFundTransfer {
  appId: string;
  outBizNo: string;
  orderId: string;
  payFundOrderId: string;
  status: FundStatus;
  amount: number;
  paidCount: number;
  data: FundTransferData;
}

function transferOf(row: any): SandboxFundTransfer {
  return {
    appId: row.app_id,
    outBizNo: row.out_biz_no,
    orderId: row.order_id,
    payFundOrderId: row.pay_fund_order_id,
    status: row.status,
    amount: Number(row.amount),
    paidCount: Number(row.paid_count),
    data: parseJson<FundTransferData>(row.data, {} as FundTransferData),
  };
}

/** A transfer of the app by one of its ids. */
export async function findFundTransfer(db: Knex, appId: string, by: { outBizNo: string } | { orderId: string } | { payFundOrderId: string }): Promise<SandboxFundTransfer | undefined> {
  const where = 'outBizNo' in by ? { out_biz_no: by.outBizNo } : 'orderId' in by ? { order_id: by.orderId } : { pay_fund_order_id: by.payFundOrderId };
  const row = await db(TABLE).where({ app_id: appId, ...where }).first();
  return row ? transferOf(row) : undefined;
}

/** Inserts a paid transfer (paid_count 1 when SUCCESS); false when its out_biz_no exists (the caller re-reads it). */
export async function insertFundTransfer(db: Knex, t: SandboxFundTransfer): Promise<boolean> {
  const rows = await db(TABLE)
    .insert({
      app_id: t.appId, out_biz_no: t.outBizNo, order_id: t.orderId, pay_fund_order_id: t.payFundOrderId, status: t.status,
      amount: t.amount, paid_count: t.status === 'SUCCESS' ? 1 : 0, data: JSON.stringify(t.data), created: t.data.transDate, updated_ms: Date.now(),
    })
    .onConflict(['app_id', 'out_biz_no'])
    .ignore()
    .returning('out_biz_no');
  return rows.length > 0;
}

/** How many times the simulator paid this out_biz_no out (0 or 1 unless something is badly wrong). */
export async function fundPaidCount(db: Knex, appId: string, outBizNo: string): Promise<number> {
  const row = await db(TABLE).where({ app_id: appId, out_biz_no: outBizNo }).first('paid_count');
  return row ? Number(row.paid_count) : 0;
}
