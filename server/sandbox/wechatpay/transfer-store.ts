/**
 * The WeChat Pay simulator's 商家转账 bills (sandbox_wechatpay_transfer_bills, migration 021).
 * State changes are conditional updates on the current state; the row count decides races. A
 * move to SUCCESS raises paid_count in the same statement, so a test can assert a bill was paid
 * exactly once.
 */
import type { Knex } from 'knex';
import { parseJson } from '../../db.ts';

const TABLE = 'sandbox_wechatpay_transfer_bills';

export type BillState = 'ACCEPTED' | 'PROCESSING' | 'WAIT_USER_CONFIRM' | 'TRANSFERING' | 'SUCCESS' | 'FAIL' | 'CANCELING' | 'CANCELLED';
export const FINAL_STATES: ReadonlySet<BillState> = new Set(['SUCCESS', 'FAIL', 'CANCELLED']);

/** What a bill keeps beside its columns. Times are unix seconds. */
export interface BillData {
  appid: string;
  openid: string;
  sceneId: string;
  remark: string;
  notifyUrl?: string;
  /** Digest of the bill's terms (the decrypted user_name included): a repeat with the same terms gets the same bill. */
  terms: string;
  /** The decrypted user_name, when one was given (the simulator's check of real names). */
  userName?: string;
  createdAt: number;
  updatedAt: number;
  /** The 24-hour confirmation window's end (the sandbox clock may bring it forward). */
  confirmBy: number;
  failReason?: string;
  /** One notify id per bill; retries repeat it. */
  notifyId: string;
}

export interface SandboxTransferBill {
  mchid: string;
  outBillNo: string;
  transferBillNo: string;
  packageInfo: string;
  state: BillState;
  amount: number;
  paidCount: number;
  data: BillData;
}

function billOf(row: any): SandboxTransferBill {
  return {
    mchid: row.mchid,
    outBillNo: row.out_bill_no,
    transferBillNo: row.transfer_bill_no,
    packageInfo: row.package_info,
    state: row.state,
    amount: Number(row.amount),
    paidCount: Number(row.paid_count),
    data: parseJson<BillData>(row.data, {} as BillData),
  };
}

export async function findBill(db: Knex, mchid: string, outBillNo: string): Promise<SandboxTransferBill | undefined> {
  const row = await db(TABLE).where({ mchid, out_bill_no: outBillNo }).first();
  return row ? billOf(row) : undefined;
}

export async function findBillByTransferBillNo(db: Knex, mchid: string, transferBillNo: string): Promise<SandboxTransferBill | undefined> {
  const row = await db(TABLE).where({ mchid, transfer_bill_no: transferBillNo }).first();
  return row ? billOf(row) : undefined;
}

export async function findBillByPackage(db: Knex, packageInfo: string): Promise<SandboxTransferBill | undefined> {
  if (packageInfo.length > 128) return undefined;
  const row = await db(TABLE).where({ package_info: packageInfo }).first();
  return row ? billOf(row) : undefined;
}

/** Inserts a bill; false when its out_bill_no exists (the caller re-reads it). */
export async function insertBill(db: Knex, bill: SandboxTransferBill): Promise<boolean> {
  const rows = await db(TABLE)
    .insert({
      mchid: bill.mchid, out_bill_no: bill.outBillNo, transfer_bill_no: bill.transferBillNo, package_info: bill.packageInfo,
      state: bill.state, amount: bill.amount, paid_count: 0, data: JSON.stringify(bill.data), created: bill.data.createdAt, updated_ms: Date.now(),
    })
    .onConflict(['mchid', 'out_bill_no'])
    .ignore()
    .returning('out_bill_no');
  return rows.length > 0;
}

/** Moves a bill from the state it was read in; false when someone moved it first. SUCCESS counts a payment. */
export async function transitionBill(db: Knex, bill: SandboxTransferBill, to: BillState, data: BillData): Promise<SandboxTransferBill | undefined> {
  const n = await db(TABLE)
    .where({ mchid: bill.mchid, out_bill_no: bill.outBillNo, state: bill.state })
    .update({
      state: to, data: JSON.stringify(data), updated_ms: Date.now(),
      ...(to === 'SUCCESS' ? { paid_count: db.raw('paid_count + 1') } : {}),
    });
  return n === 1 ? { ...bill, state: to, data, paidCount: bill.paidCount + (to === 'SUCCESS' ? 1 : 0) } : undefined;
}

/** Moves the bill's confirmation deadline (the sandbox clock). */
export async function setConfirmBy(db: Knex, bill: SandboxTransferBill, confirmBy: number): Promise<void> {
  await db(TABLE).where({ mchid: bill.mchid, out_bill_no: bill.outBillNo }).update({ data: JSON.stringify({ ...bill.data, confirmBy }) });
}

/** How many times the simulator paid this bill out (0 or 1 unless something is badly wrong). */
export async function billPaidCount(db: Knex, mchid: string, outBillNo: string): Promise<number> {
  const row = await db(TABLE).where({ mchid, out_bill_no: outBillNo }).first('paid_count');
  return row ? Number(row.paid_count) : 0;
}
