import type { Knex } from 'knex';
import type { Logger } from '../log.ts';
import type { PaymentAction, Provider } from '../channels/types.ts';

export interface SandboxDeps {
  db: Knex;
  publicUrl: string;
  masterKey: Buffer;
  logger: Logger;
}

export type SandboxOutcome = 'pay' | 'fail' | 'cancel';
/** normal: notify at once; delay:<s>; duplicate: notify twice; drop: never notify. */
export type NotifyMode = 'normal' | 'duplicate' | 'drop' | `delay:${number}`;

/** Who the simulator registers: the gateway app, and where that app's channel notifications go (PayPal's webhook listener). */
export interface SandboxRegistration {
  appId: string;
  notifyUrl: string;
}

/** A merchant app the simulator is about to register: its keys are generated, nothing is stored yet. */
export interface SandboxMerchantDraft {
  /**
   * Registers it at the simulator through `db` (the caller's transaction: a provisioning that
   * loses a race rolls its merchant back) and returns the gateway-side credentials, as the
   * merchant would get them from the channel.
   */
  register(db: Knex, gateway?: SandboxRegistration): Promise<Record<string, unknown>>;
}

/** What each channel simulator offers the gateway core (test mode only). */
export interface SandboxProvider {
  provider: Provider;
  /**
   * Draws a new merchant app (its own channel keypair, the app's keypair). The RSA keys are
   * generated on libuv's threads, never on the event loop, and before any transaction opens.
   */
  draftMerchant(deps: SandboxDeps): Promise<SandboxMerchantDraft>;
  /**
   * Acts as the customer on the simulator's payer page for an order already created there,
   * over HTTP. With notify 'normal' or 'duplicate' it resolves after the notify was answered.
   * `action` is what createPayment returned: the customer opens it first (a page-pay trade
   * exists at the channel only once its page was opened).
   */
  /** Test mode: where the customer's phone would go for a QR code (the simulator's "scan" page). */
  scanUrl?(publicUrl: string, codeUrl: string): string;
  /** Test mode: the stand-in for an in-app payment sheet (WeChat's getBrandWCPayRequest) with these parameters. */
  inAppPayUrl?(publicUrl: string, params: Record<string, string>, returnUrl: string): string;
  /** Test mode: the sandbox payer's id at the channel (WeChat openid), for helpers that skip the OAuth. */
  payerId?(deps: SandboxDeps, channelAppId: string): string;
  act(deps: SandboxDeps, opts: { appId: string; orderNo: string; outcome: SandboxOutcome; notify: NotifyMode; action?: PaymentAction }): Promise<void>;
  /**
   * Test mode, money out: acts as the recipient of a transfer the simulator holds (WeChat's
   * user confirmation): confirm, decline, or let the 24 h confirmation window lapse (time
   * compressed). The simulator then notifies as the channel would.
   */
  transferRecipient?(deps: SandboxDeps, opts: { merchantId: string; transferNo: string; outcome: 'confirm' | 'decline' | 'expire' }): Promise<void>;
  /** Test mode: the recipient opens the red packet, or leaves it for 24 h so it is refunded (time compressed). */
  redPacketRecipient?(deps: SandboxDeps, opts: { merchantId: string; packetNo: string; outcome: 'open' | 'expire' }): Promise<void>;
}
