import * as initial from './001_initial.ts';
import * as moneyMovement from './002_money_movement.ts';
import * as consoleSessions from './003_console.ts';
import * as deliveryIndex from './004_delivery_index.ts';
import * as idempotencyExpiry from './005_idempotency_expiry.ts';
import * as attemptsByPayment from './006_attempts_by_payment.ts';
import * as productionReads from './007_production_reads.ts';
import * as paymentCloseRetry from './008_payment_close_retry.ts';
import * as nextAction from './009_next_action.ts';
import * as attemptReference from './010_attempt_reference.ts';
import * as unionpaySandbox from './011_unionpay_sandbox.ts';
import * as paypalSandbox from './012_paypal_sandbox.ts';
import * as attemptWallet from './013_attempt_wallet.ts';
import * as accounts from './015_accounts.ts';
import * as recurring from './018_recurring.ts';
import * as moneyOut from './019_money_out.ts';
import * as wechatTransferSandbox from './021_wechat_transfer_sandbox.ts';
import * as wechatRedpackSandbox from './022_wechat_redpack_sandbox.ts';
import * as installments from './024_installments.ts';
import * as alipayDeductionSandbox from './023_alipay_deduction_sandbox.ts';
import * as subscriptions from './025_subscriptions.ts';
import * as apiKeyExpiry from './035_api_key_expiry.ts';
import * as consoleLoginFailures from './036_console_login_failures.ts';
import * as alipayFundSandbox from './037_alipay_fund_sandbox.ts';
import * as wechatPapay from './038_wechat_papay.ts';
import * as statements from './039_statements.ts';
import * as channelMessages from './040_channel_messages.ts';
import * as teamAudit from './041_team_audit.ts';
import * as channelOnboarding from './042_channel_onboarding.ts';
import * as consoleReads from './044_console_reads.ts';

/** Every migration in order; knex reads them through a migration source, not the file system. */
export const migrations = [
  { name: '001_initial', ...initial },
  { name: '002_money_movement', ...moneyMovement },
  { name: '003_console', ...consoleSessions },
  { name: '004_delivery_index', ...deliveryIndex },
  { name: '005_idempotency_expiry', ...idempotencyExpiry },
  { name: '006_attempts_by_payment', ...attemptsByPayment },
  { name: '007_production_reads', ...productionReads },
  { name: '008_payment_close_retry', ...paymentCloseRetry },
  { name: '009_next_action', ...nextAction },
  { name: '010_attempt_reference', ...attemptReference },
  { name: '011_unionpay_sandbox', ...unionpaySandbox },
  { name: '012_paypal_sandbox', ...paypalSandbox },
  { name: '013_attempt_wallet', ...attemptWallet },
  { name: '015_accounts', ...accounts },
  { name: '018_recurring', ...recurring },
  { name: '019_money_out', ...moneyOut },
  { name: '021_wechat_transfer_sandbox', ...wechatTransferSandbox },
  { name: '022_wechat_redpack_sandbox', ...wechatRedpackSandbox },
  { name: '023_alipay_deduction_sandbox', ...alipayDeductionSandbox },
  { name: '024_installments', ...installments },
  { name: '025_subscriptions', ...subscriptions },
  { name: '035_api_key_expiry', ...apiKeyExpiry },
  { name: '036_console_login_failures', ...consoleLoginFailures },
  { name: '037_alipay_fund_sandbox', ...alipayFundSandbox },
  { name: '038_wechat_papay', ...wechatPapay },
  { name: '039_statements', ...statements },
  { name: '040_channel_messages', ...channelMessages },
  { name: '041_team_audit', ...teamAudit },
  { name: '042_channel_onboarding', ...channelOnboarding },
  { name: '044_console_reads', ...consoleReads },
];
