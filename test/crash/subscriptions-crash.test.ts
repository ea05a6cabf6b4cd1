import { describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { createLogger } from '../../server/log.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { PERIOD_LEASE_MS } from '../../server/subscriptions/charge.ts';
import { pgUrl, pool, waitFor, withCrashWorld, type DbKind } from './harness.ts';

// Recurring charges across a crash (DESIGN §2.5, issue 15): a few hundred subscriptions on weekly
// Alipay 周期扣款 agreements whose first deduction date is today all fall due at once; the gateway
// is killed with SIGKILL while its scheduler charges them, then restarted. Every due period must
// end charged exactly once: one payment with one try under the period's own order number,
// succeeded; one deduction at the simulator under that number, for that period's date; one
// payment.succeeded and one subscription.renewed; none missed, no subscription inconsistent, and
// no failed try (a period charged again would be one: Alipay refuses a second deduction of a paid
// period, so a resubmission under a new number shows here as a refused try and a closed payment).

const SUBSCRIPTIONS = 300;
const CONCURRENCY = 20;
/**
 * SIGKILL once the simulator has taken this many deductions and a charge is in flight. (Not a
 * multiple of the scheduler's batch of 50: at the end of a batch it rests until its next pass.)
 */
const KILL_AFTER_DEDUCTIONS = 130;
/** Every UNKNOWN_EVERY-th subscription charges an amount ending in 52 fen: the simulator charges it and answers "unknown". */
const UNKNOWN_EVERY = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const beijingDay = (days = 0) => new Date(Date.now() + 8 * 3600_000 + days * 86_400_000).toISOString().slice(0, 10);
const amountOf = (i: number) => (i % UNKNOWN_EVERY === 0 ? 1052 : 1100 + (i % 40));

function crashDuringRenewals(kind: DbKind): Promise<void> {
  return withCrashWorld({ kind, name: 'subscription', env: { CHECKSTAND_SANDBOX: 'true' } }, async (w) => {
    const { db, masterKey, balancer, gateways, app, api, step, steps } = w;
    const up = (name: string, workers: boolean) => w.up(name, { CHECKSTAND_WORKERS: String(workers) });

    // --- the subscriptions, made by a gateway whose scheduler is off ------------------------------
    const seeder = await up('seed', false);
    const sandboxDeps = { db, config: { sandbox: true, publicUrl: balancer.url, masterKeyBytes: masterKey }, logger: createLogger('error') };
    const merchantId = ((await getCredentials(sandboxDeps as never, app.app_id, 'alipay', false)) as { appId: string }).appId;
    const today = beijingDay(0);
    const subscriptionIds: string[] = [];
    await pool([...Array(SUBSCRIPTIONS).keys()], CONCURRENCY, async (i) => {
      const customer = await api('POST', '/v1/customers', { name: `订户 ${i}`, out_user_id: `crash_u_${i}` });
      expect(customer.status, JSON.stringify(customer.body)).toBe(200);
      const created = await api('POST', '/v1/agreements', {
        customer: customer.body.id, channel: 'alipay', single_amount_max: 3000, period_rule: { period_type: 'DAY', period: 7, execute_time: today },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(200);
      // The wallet user signs on the simulator's page; its sign notify makes the agreement active.
      const html = await (await fetch(created.body.next_action.redirect_url)).text();
      const field = (name: string) => html.match(new RegExp(`name="${name}" value="([^"]+)"`))?.[1] ?? '';
      const signed = await fetch(`${balancer.url}/sandbox/alipay/agreement/action`, {
        method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ app_id: field('app_id'), external_agreement_no: field('external_agreement_no'), t: field('t'), action: 'sign' }),
      });
      expect(((await signed.json()) as { status: string }).status).toBe('NORMAL');
      let agreement = created.body;
      for (let n = 0; agreement.status !== 'active' && n < 200; n++) {
        await sleep(25);
        agreement = (await api('GET', `/v1/agreements/${created.body.id}`)).body;
      }
      expect(agreement.status).toBe('active');
      const s = await api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: amountOf(i), subject: `周卡 ${i}`, interval: 'week', interval_count: 1, metadata: { i: String(i) } });
      expect(s.status, JSON.stringify(s.body)).toBe(200);
      subscriptionIds.push(s.body.id);
    });
    await seeder.kill('SIGTERM');
    balancer.setBackends([]);
    const count = async (q: Knex.QueryBuilder) => Number((await q.count<{ n: number }[]>({ n: '*' }))[0].n);
    expect(await count(db('subscription_periods').where({ app_id: app.app_id, status: 'pending' }).where('next_try_at_ms', '<=', Date.now()))).toBe(SUBSCRIPTIONS);
    step(`${SUBSCRIPTIONS} subscriptions on signed weekly agreements, their first periods all due`);

    // --- the scheduler charges them; SIGKILL mid-run --------------------------------------------
    const deductions = () => count(db('sandbox_agreement_deductions').where({ provider: 'alipay', merchant_id: merchantId }));
    const first = await up('A', true);
    const inFlightNow = async () => (await db('payments').where({ app_id: app.app_id, status: 'pending' }).first('id')) !== undefined;
    for (const deadline = Date.now() + 30_000; !((await deductions()) >= KILL_AFTER_DEDUCTIONS && (await inFlightNow())); await sleep(5)) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the scheduler to be charging');
    }
    await first.kill('SIGKILL');
    const killedAt = Date.now();
    await sleep(250); // for PostgreSQL to act on what A's dead connections had already sent
    // What A left: periods it had claimed (their due time is its lease), tries written, tries sent.
    const left = (await db('subscription_periods').where({ app_id: app.app_id, status: 'pending' }).select('subscription_id', 'period_index', 'order_no', 'submit_count', 'next_try_at_ms'))
      .map((p) => ({ ...p, next_try_at_ms: Number(p.next_try_at_ms) }));
    const leased = left.filter((p) => p.next_try_at_ms > killedAt && p.next_try_at_ms <= killedAt + PERIOD_LEASE_MS + 1000 && p.next_try_at_ms % 3_600_000 !== 0);
    const inFlight = left.filter((p) => p.order_no !== null);
    const heldNos = new Set<string>(inFlight.length === 0 ? [] : await db('sandbox_agreement_deductions').where({ merchant_id: merchantId }).whereIn('out_trade_no', inFlight.map((p) => p.order_no)).pluck('out_trade_no'));
    const atKill = await deductions();
    step(`SIGKILL at ${atKill} deductions: ${left.length} periods pending, ${leased.length} under A's lease, ${inFlight.length} with a try written, ${heldNos.size} of those paid at the simulator`);
    // A's lease (PERIOD_LEASE_MS, 2 minutes) runs out: its due times are moved to now rather than waited for.
    for (const p of leased) {
      await db('subscription_periods').where({ subscription_id: p.subscription_id, period_index: p.period_index, status: 'pending', next_try_at_ms: p.next_try_at_ms }).update({ next_try_at_ms: killedAt });
    }

    // --- restart; the scheduler finishes -------------------------------------------------------
    await up('B', true);
    step('B up');
    // Left: a period due, under a claimant's lease or to be looked at again (all within minutes), or with a try in flight.
    // (What stays pending is next week's period, first tried five days from now.)
    const dueLeft = () => count(db('subscription_periods').where({ app_id: app.app_id, status: 'pending' }).where((q) => q.where('next_try_at_ms', '<=', Date.now() + 86_400_000).orWhereNotNull('order_no')));
    const paymentsPending = () => count(db('payments').where({ app_id: app.app_id, status: 'pending' }));
    await waitFor('every due period to be charged', async () => (await dueLeft()) === 0 && (await paymentsPending()) === 0, 45_000);
    const endMs = Date.now();
    step(`drained: ${await deductions()} deductions in all`);

    // --- every due period charged exactly once -------------------------------------------------
    const subs = await db('subscriptions').where({ app_id: app.app_id }).select();
    expect(subs).toHaveLength(SUBSCRIPTIONS);
    const periods = await db('subscription_periods').where({ app_id: app.app_id }).orderBy(['subscription_id', 'period_index']).select();
    const payments = await db('payments').where({ app_id: app.app_id }).whereNotNull('subscription_id').select('id', 'subscription_id', 'subscription_period', 'status', 'amount');
    const attempts = await db('payment_attempts').where({ app_id: app.app_id }).select('payment_id', 'channel_order_no', 'status');
    const attemptsOf = new Map<string, typeof attempts>();
    for (const a of attempts) attemptsOf.set(a.payment_id, [...(attemptsOf.get(a.payment_id) ?? []), a]);
    const agreements = new Map((await db('agreements').where({ app_id: app.app_id }).select('id', 'channel_agreement_no')).map((a) => [a.id, a.channel_agreement_no]));
    const charged = await db('sandbox_agreement_deductions').where({ provider: 'alipay', merchant_id: merchantId }).select('agreement_no', 'period_date', 'out_trade_no', 'amount');
    const trades = await db('sandbox_orders').where({ provider: 'alipay', merchant_id: merchantId }).select('out_trade_no', 'status', 'amount');
    const renewed = await db('events').where({ app_id: app.app_id, type: 'subscription.renewed' }).select('object_id');
    const paidEvents = await db('events').where({ app_id: app.app_id, type: 'payment.succeeded' }).select('object_id');
    const otherEvents = await db('events').where({ app_id: app.app_id }).whereIn('type', ['subscription.payment_failed', 'subscription.past_due', 'subscription.canceled']).select('type', 'object_id');
    const countBy = (xs: string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());
    const renewedOf = countBy(renewed.map((e) => e.object_id));
    const paidEventsOf = countBy(paidEvents.map((e) => e.object_id));
    const tradeOf = new Map(trades.map((t) => [t.out_trade_no, t]));
    const deductionsOf = new Map<string, typeof charged>();
    for (const c of charged) deductionsOf.set(c.agreement_no, [...(deductionsOf.get(c.agreement_no) ?? []), c]);

    let periodsCharged = 0;
    for (const s of subs) {
      const mine = periods.filter((p) => p.subscription_id === s.id);
      const paid = mine.filter((p) => p.status === 'succeeded');
      const open = mine.filter((p) => p.status !== 'succeeded');
      const at = `${s.id} (${s.metadata})`;
      // Periods paid in order from the first, then one pending period that is not due yet: none missed.
      expect(paid.map((p) => Number(p.period_index)), at).toEqual([...paid.keys()]);
      expect(open.map((p) => [Number(p.period_index), p.status, p.order_no]), at).toEqual([[paid.length, 'pending', null]]);
      expect(Number(open[0].next_try_at_ms), at).toBeGreaterThan(endMs + 86_400_000);
      // Today's period was due; next week's is not yet.
      expect(paid.map((p) => p.scheduled_date), at).toEqual([today]);
      // The subscription is on its latest paid period.
      const last = paid[paid.length - 1];
      expect({ status: s.status, failed: Number(s.failed_periods), start: Number(s.current_period_start), end: Number(s.current_period_end), latest: s.latest_payment_id }, at)
        .toEqual({ status: 'active', failed: 0, start: Number(last.period_start), end: Number(last.period_end), latest: last.payment_id });
      // One payment per paid period, succeeded, with one attempt whose number the simulator paid once, for that period's date.
      const pays = payments.filter((p) => p.subscription_id === s.id);
      expect(pays.map((p) => [Number(p.subscription_period), p.status]).sort(), at).toEqual(paid.map((p) => [Number(p.period_index), 'succeeded']).sort());
      const atChannel = deductionsOf.get(agreements.get(s.agreement_id)!) ?? [];
      expect(atChannel, `${at}: deductions at the simulator`).toHaveLength(paid.length);
      for (const p of paid) {
        const atts = attemptsOf.get(p.payment_id) ?? [];
        expect(atts.map((a) => [a.channel_order_no, a.status]), at).toEqual([[p.order_no, 'succeeded']]);
        expect(atChannel.filter((c) => c.out_trade_no === p.order_no).map((c) => [c.period_date, Number(c.amount)]), at).toEqual([[p.scheduled_date, Number(s.amount)]]);
        expect(tradeOf.get(p.order_no)?.status, at).toBe('TRADE_SUCCESS');
        expect(paidEventsOf.get(p.payment_id) ?? 0, `${at}: payment.succeeded of period ${p.period_index}`).toBe(1);
      }
      expect(renewedOf.get(s.id) ?? 0, `${at}: subscription.renewed`).toBe(paid.length);
      periodsCharged += paid.length;
    }
    // Nothing else was charged: every trade at the simulator is one period's, every fen one period's.
    expect(trades.filter((t) => !periods.some((p) => p.order_no === t.out_trade_no)).map((t) => t.out_trade_no)).toEqual([]);
    expect(charged).toHaveLength(periodsCharged);
    expect(trades).toHaveLength(periodsCharged);
    const sum = (xs: Array<{ amount: unknown }>) => xs.reduce((n, x) => n + Number(x.amount), 0);
    expect(sum(charged), 'fen deducted at the simulator').toBe(sum(payments.filter((p) => p.status === 'succeeded')));
    expect(otherEvents).toEqual([]);

    // The kill really landed mid-run: A had charged some, B charged the rest, and A left tries behind.
    expect(atKill).toBeGreaterThanOrEqual(KILL_AFTER_DEDUCTIONS);
    expect(periodsCharged).toBeGreaterThan(atKill);
    expect(gateways).toHaveLength(3);
    expect(left.length).toBeGreaterThan(0);
    console.log(
      `${kind}: ${SUBSCRIPTIONS} subscriptions, ${periodsCharged} periods charged, ${atKill} before the SIGKILL; A left ${inFlight.length} tries in flight ` +
        `(${heldNos.size} paid at the simulator) and ${leased.length} periods under its lease; ${w.seconds()} s in all\n  ${steps.join('\n  ')}`,
    );
  });
}

describe('subscriptions across a crash', () => {
  it.skipIf(pgUrl)('SQLite: SIGKILL while the scheduler charges 300 subscriptions, restart: each due period charged exactly once, none missed', () => crashDuringRenewals('sqlite'), 120_000);
  it.skipIf(!pgUrl)('PostgreSQL: SIGKILL while the scheduler charges 300 subscriptions, restart: each due period charged exactly once, none missed', () => crashDuringRenewals('postgres'), 120_000);
});
