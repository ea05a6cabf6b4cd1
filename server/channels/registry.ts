/** The only file that imports concrete channels (and their simulators). */
import type { Channel, ChannelCode, Provider } from './types.ts';
import { providerOf } from './types.ts';
import { alipay } from './alipay/index.ts';
import { alipaySandbox } from '../sandbox/alipay/index.ts';
import { wechatpay } from './wechatpay/index.ts';
import { wechatpaySandbox } from '../sandbox/wechatpay/index.ts';
import { unionpay } from './unionpay/index.ts';
import { unionpaySandbox } from '../sandbox/unionpay/index.ts';
import { paypal } from './paypal/index.ts';
import { paypalSandbox } from '../sandbox/paypal/index.ts';
import { stripe } from './stripe/index.ts';
import { stripeSandbox } from '../sandbox/stripe/index.ts';
import type { SandboxProvider } from '../sandbox/types.ts';

const channels: Partial<Record<Provider, Channel<any>>> = { alipay, wechatpay, unionpay, paypal, stripe };
const sandboxes: Partial<Record<Provider, SandboxProvider>> = {
  alipay: alipaySandbox, wechatpay: wechatpaySandbox, unionpay: unionpaySandbox, paypal: paypalSandbox, stripe: stripeSandbox,
};

export function channelFor(provider: Provider): Channel<any> | undefined {
  return channels[provider];
}

/** The channel's simulator, when it has one and this gateway mounts the simulators (CHECKSTAND_SANDBOX). */
export function sandboxFor(config: { sandbox: boolean }, provider: Provider): SandboxProvider | undefined {
  return config.sandbox ? sandboxes[provider] : undefined;
}

/** Whether the channel has a simulator in this build, mounted or not. */
export function hasSimulator(provider: Provider): boolean {
  return Boolean(sandboxes[provider]);
}

/** Why a test-mode step that needs a simulator cannot run on this gateway. */
export const SANDBOX_OFF = 'this gateway runs without its channel simulators (CHECKSTAND_SANDBOX=false)';

/** Channel codes whose adapter exists. */
export function implementedCodes(): ChannelCode[] {
  return Object.values(channels).flatMap((c) => [...(c?.codes ?? [])]);
}

export function isImplemented(code: ChannelCode): boolean {
  return Boolean(channels[providerOf(code)]?.codes.includes(code));
}

export function isProvider(value: string): value is Provider {
  return value === 'alipay' || value === 'wechatpay' || value === 'unionpay' || value === 'paypal' || value === 'stripe';
}

// --- money out (DESIGN §2.4, payouts.ts) ---------------------------------------------------------
import type { PayoutChannel, RedPacketChannel } from './payouts.ts';
import { wechatpayPayouts } from './wechatpay/transfers.ts';
import { wechatpayRedPackets } from './wechatpay/redpack.ts';
import { alipayPayouts, alipayRedPackets } from './alipay/payouts.ts';

/** Transfer adapters by provider: each adapter folder exports one (alipay/payouts.ts, wechatpay/transfers.ts). */
const payoutChannels: Partial<Record<Provider, PayoutChannel<any>>> = { alipay: alipayPayouts, wechatpay: wechatpayPayouts };
/** Red-packet adapters by provider (wechatpay/redpack.ts, alipay/payouts.ts). */
const redPacketChannels: Partial<Record<Provider, RedPacketChannel<any>>> = { alipay: alipayRedPackets, wechatpay: wechatpayRedPackets };

export function payoutChannelFor(provider: Provider): PayoutChannel<any> | undefined {
  return payoutChannels[provider];
}

export function redPacketChannelFor(provider: Provider): RedPacketChannel<any> | undefined {
  return redPacketChannels[provider];
}

// --- statements (对账单, channels/statements.ts) ---------------------------------------------------
import type { StatementChannel } from './statements.ts';
import { alipayStatements } from './alipay/statement.ts';
import { wechatpayStatements } from './wechatpay/statement.ts';
import { unionpayStatements } from './unionpay/statement.ts';
import { paypalStatements } from './paypal/statement.ts';
import { stripeStatements } from './stripe/statement.ts';

/** Statement adapters by provider: each adapter folder exports one (<provider>/statement.ts). */
const statementChannels: Partial<Record<Provider, StatementChannel<any>>> = {
  alipay: alipayStatements, wechatpay: wechatpayStatements, unionpay: unionpayStatements, paypal: paypalStatements, stripe: stripeStatements,
};

export function statementChannelFor(provider: Provider): StatementChannel<any> | undefined {
  return statementChannels[provider];
}

/** Providers whose daily statement Checkstand fetches and matches. */
export function statementProviders(): Provider[] {
  return Object.keys(statementChannels) as Provider[];
}
