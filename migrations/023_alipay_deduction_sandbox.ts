import type { Knex } from 'knex';

/**
 * The Alipay simulator's side of 周期扣款 deductions (protocols/recurring.md §1.4, §1.5):
 * - sandbox_agreement_deductions holds one row per successful deduction, keyed by the mandate and
 *   the scheduled date of the period it paid: the primary key is the "one success per period"
 *   rule, so two concurrent deductions of one period cannot both succeed; the rows also give the
 *   total_payments and total_amount counts;
 * - sandbox_clocks holds a per-merchant offset from the real clock that a simulator judges
 *   time-bound rules by (the deduction window), so tests can move a merchant's "now".
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sandbox_agreement_deductions', (t) => {
    t.string('provider', 16).notNullable();
    t.string('merchant_id', 40).notNullable();
    t.string('agreement_no', 64).notNullable();
    // yyyy-MM-dd (Beijing): the scheduled deduction date of the period this deduction paid.
    t.string('period_date', 10).notNullable();
    t.string('out_trade_no', 64).notNullable();
    t.bigInteger('amount').notNullable();
    t.bigInteger('created').notNullable();
    t.primary(['provider', 'merchant_id', 'agreement_no', 'period_date']);
  });

  await knex.schema.createTable('sandbox_clocks', (t) => {
    t.string('provider', 16).notNullable();
    t.string('merchant_id', 40).notNullable();
    t.bigInteger('offset_ms').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.primary(['provider', 'merchant_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('sandbox_clocks');
  await knex.schema.dropTableIfExists('sandbox_agreement_deductions');
}
