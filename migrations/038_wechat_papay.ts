import type { Knex } from 'knex';

/**
 * WeChat Pay 委托代扣 (papay, protocols/recurring.md §2): subscriptions on WeChat agreements and
 * the simulator's side of them.
 * - subscription_periods.notice_at_ms: when the pre-deduction notice (预扣费通知, §2.3) of the
 *   period's charge was sent, by the subscription's clock; a WeChat deduction is sent only after
 *   it and its waiting day. Null on Alipay periods, and before the notice.
 * - sandbox_papay_orders: the simulator's pappayapply orders by (mchid, out_trade_no), with the
 *   contract they charged and their trade_state (ACCEPT, SUCCESS, PAY_FAIL, …). The simulator's
 *   contracts live in sandbox_agreements (provider 'wechatpay', merchant_id = mchid,
 *   external_agreement_no = contract_code, agreement_no = contract_id); each contract's latest
 *   pre-deduction notice is in its data.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('subscription_periods', (t) => {
    t.bigInteger('notice_at_ms');
  });
  await knex.schema.createTable('sandbox_papay_orders', (t) => {
    t.string('merchant_id', 40).notNullable();
    t.string('out_trade_no', 64).notNullable();
    t.string('contract_id', 64).notNullable();
    t.string('transaction_id', 64).notNullable();
    t.string('trade_state', 16).notNullable();
    t.bigInteger('amount').notNullable();
    t.text('data').notNullable();
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.primary(['merchant_id', 'out_trade_no']);
    t.index(['merchant_id', 'contract_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('sandbox_papay_orders');
  await knex.schema.alterTable('subscription_periods', (t) => {
    t.dropColumn('notice_at_ms');
  });
}
