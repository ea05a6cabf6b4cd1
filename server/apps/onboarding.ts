/**
 * Channel onboarding (支付渠道申请, issue 16): per channel, what the merchant prepares, where to
 * apply, the addresses of THIS gateway to register at the channel, the products to enable, as a
 * checklist the console stores ticks of (onboarding-repo.ts). Pure data and URL arithmetic: the
 * console page renders it, nothing here talks to a channel.
 */
import type { Provider } from '../channels/types.ts';
import { channelFor } from '../channels/registry.ts';
import type { Lang } from '../checkout/i18n.ts';
import { onboardingGuideZh } from './onboarding-zh-CN.ts';

/** An address of this gateway the merchant registers (or that is sent with every order). */
export interface GatewayAddress {
  label: string;
  value: string;
  note: string;
}

export interface ChecklistItem {
  /** Stable id (stored with the tick); letters and _ only. */
  id: string;
  text: string;
  /** The config fields this step yields, if any. */
  yields?: string;
}

export interface OnboardingGuide {
  provider: Provider;
  name: string;
  applyAt: Array<{ label: string; url: string }>;
  prepare: string[];
  addresses: GatewayAddress[];
  /** Product names as the channel's console calls them, and the Checkstand channel codes they serve. */
  products: Array<{ name: string; codes: string }>;
  items: ChecklistItem[];
  /** What test mode uses when no sandbox credentials are stored. */
  testNote: string;
}

export const ONBOARDING_PROVIDERS: readonly Provider[] = ['alipay', 'wechatpay', 'unionpay', 'paypal', 'stripe'];

const STORE_ITEM: ChecklistItem = { id: 'stored_checked', text: 'Credentials stored on the channels page, and “Check credentials” passes every step in this mode.' };

/** The notify URL of an app for a channel: what the payments service sends and the channels post to. */
export function notifyUrlOf(publicUrl: string, provider: Provider, appId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/notify/${provider}/${appId}`;
}

/** The guide of one channel for one app, with this gateway's addresses in it, in English or zh-CN (onboarding-zh-CN.ts). */
export function onboardingGuide(provider: Provider, input: { publicUrl: string; appId: string; lang?: Lang }): OnboardingGuide {
  const base = input.publicUrl.replace(/\/+$/, '');
  const url = new URL(base);
  const notify = notifyUrlOf(base, provider, input.appId);
  const returns = `${base}/pay/<checkout token>/return`;
  const name = channelFor(provider)?.displayName ?? provider;
  if (input.lang === 'zh-CN') {
    return onboardingGuideZh({ provider, name, notify, returns, origin: url.origin, host: url.host, stripeEvents: channelFor('stripe')?.webhookEvents ?? [] });
  }
  switch (provider) {
    case 'alipay':
      return {
        provider, name,
        applyAt: [
          { label: 'Alipay Open Platform (create the app, keys, 应用网关)', url: 'https://open.alipay.com' },
          { label: 'Alipay merchant platform (sign the products)', url: 'https://b.alipay.com' },
        ],
        prepare: [
          'An enterprise Alipay account (企业支付宝账号) and its partner id (2088…).',
          'Business licence (营业执照), the legal representative’s ID, a settlement bank account.',
          'The website (ICP-filed, 已备案) or app where customers pay: the products are reviewed against it.',
        ],
        addresses: [
          { label: '应用网关 (app gateway)', value: notify, note: 'Where Alipay pushes messages (fund transfer results, agreement changes). Checkstand also sends it as notify_url with every order.' },
          { label: 'notify_url', value: notify, note: 'Sent with every order; nothing to register. Must be reachable from the internet.' },
          { label: 'return_url', value: returns, note: 'Sent with every page-pay order (display only: the notify or a query settles the payment).' },
          { label: '授权回调地址 (authorization callback)', value: '(not needed)', note: 'Only for 用户信息授权 / 第三方应用授权, which Checkstand’s payments do not use; leave it empty or set your own site’s.' },
        ],
        products: [
          { name: '电脑网站支付', codes: 'alipay_pc' },
          { name: '手机网站支付', codes: 'alipay_wap' },
          { name: '当面付 (扫码)', codes: 'alipay_qr' },
          { name: 'APP支付', codes: 'alipay_app' },
          { name: '转账到支付宝账户 (单笔转账, alipay.fund.trans.uni.transfer)', codes: 'transfers, red packets' },
          { name: '商家扣款 (周期扣款)', codes: 'alipay_agreement (subscriptions)' },
        ],
        items: [
          { id: 'create_app', text: 'On the Open Platform console, create a web/mobile app (网页/移动应用) and note its 16-digit APPID.', yields: 'app_id' },
          { id: 'cert_mode', text: '接口加签方式: choose 公钥证书 (certificate mode). Make the key pair and CSR with Alipay’s key tool (支付宝开放平台密钥工具), upload the CSR, download appCertPublicKey_<APPID>.crt, alipayCertPublicKey_RSA2.crt and alipayRootCert.crt. Public-key mode (支付宝公钥) works for payments, but transfers and red packets require certificate mode.', yields: 'private_key, app_cert, alipay_public_cert, alipay_root_cert (or alipay_public_key)' },
          { id: 'app_gateway', text: `Set the 应用网关 to ${notify}.` },
          { id: 'products', text: 'Add the products you use to the app (电脑网站支付, 手机网站支付, 当面付, APP支付; 单笔转账 for transfers) and sign them (签约) on the merchant platform.' },
          { id: 'seller_id', text: 'Note the partner id (2088…, 账户中心): notifies are checked against it.', yields: 'seller_id' },
          { id: 'submit_review', text: 'Submit the app for review (提交审核) and wait until it is 已上线 (online); a test-only app can use the Alipay sandbox (沙箱环境, gateway openapi-sandbox.dl.alipaydev.com).' },
          STORE_ITEM,
        ],
        testNote: 'Without Alipay sandbox credentials stored for test mode, the gateway provisions an app at its Alipay simulator (certificate mode).',
      };
    case 'wechatpay':
      return {
        provider, name,
        applyAt: [
          { label: 'WeChat Pay merchant platform (商户平台)', url: 'https://pay.weixin.qq.com' },
          { label: 'WeChat Official Accounts Platform (公众号, 网页授权域名)', url: 'https://mp.weixin.qq.com' },
          { label: 'WeChat Open Platform (mobile app AppID, for APP pay)', url: 'https://open.weixin.qq.com' },
        ],
        prepare: [
          'Business licence (营业执照), the legal representative’s ID, a company bank account (对公账户).',
          'A verified service account (服务号) or mini program for JSAPI, and/or an Open Platform mobile app for APP pay: their AppIDs.',
          `The domain ${url.host} with ICP filing (备案), served over HTTPS, for H5 and JSAPI.`,
        ],
        addresses: [
          { label: 'JSAPI支付授权目录', value: `${url.origin}/`, note: 'Register the top-level address: WeChat then checks only the domain. A deeper directory must match the paying page’s directory exactly, and Checkstand’s paying pages sit under a per-payment path.' },
          { label: 'H5支付域名', value: url.host, note: 'The domain of the pages that open h5_url and of the redirect_url after payment.' },
          { label: '网页授权域名 (on the 公众号)', value: url.host, note: 'JSAPI asks WeChat for the payer’s openid (snsapi_base) with a redirect to this domain; WeChat asks for its MP_verify_….txt file at the domain root (serve it from your proxy).' },
          { label: 'notify_url', value: notify, note: 'Sent with every order; nothing to register. HTTPS, reachable from the internet.' },
        ],
        products: [
          { name: 'Native支付', codes: 'wechat_native' },
          { name: 'JSAPI支付', codes: 'wechat_jsapi' },
          { name: 'H5支付', codes: 'wechat_h5' },
          { name: 'APP支付', codes: 'wechat_app' },
          { name: '商家转账 / 现金红包', codes: 'transfers, red packets' },
          { name: '委托代扣', codes: 'wechat_papay (subscriptions)' },
        ],
        items: [
          { id: 'merchant', text: 'Apply for a merchant account (商户入驻) on the merchant platform and note the 商户号.', yields: 'mchid' },
          { id: 'appid_binding', text: '产品中心 → AppID账号管理: bind (关联) the 公众号/小程序 AppID, and the Open Platform mobile app for APP pay, then confirm the binding on the AppID’s side.', yields: 'appid, app_appid' },
          { id: 'apiv3_key', text: '账户中心 → API安全: set the APIv3 key (32 characters).', yields: 'apiv3_key' },
          { id: 'api_certificate', text: 'API安全 → 申请API证书: make the merchant API certificate with WeChat’s certificate tool; keep apiclient_key.pem and note the certificate serial number.', yields: 'private_key, serial_no (apiclient_cert for red packets)' },
          { id: 'wechatpay_public_key', text: 'API安全 → 微信支付公钥: apply for the WeChat Pay public key and note its id (PUB_KEY_ID_…). Merchants still on platform certificates (平台证书) give those instead.', yields: 'wechatpay_public_key, wechatpay_public_key_id (or platform_certificates)' },
          { id: 'products', text: '产品中心: enable (开通) the products you use: Native支付, JSAPI支付, H5支付, APP支付.' },
          { id: 'jsapi_directory', text: `开发配置 → JSAPI支付授权目录: add ${url.origin}/` },
          { id: 'h5_domain', text: `开发配置 → H5支付域名: add ${url.host}` },
          { id: 'oauth_domain', text: `On the 公众号: 设置与开发 → 网页授权域名: add ${url.host}; store the AppSecret if you take JSAPI payments.`, yields: 'app_secret' },
          STORE_ITEM,
        ],
        testNote: 'WeChat Pay has no sandbox for API v3: without test credentials of your own, the gateway provisions a merchant at its WeChat Pay simulator.',
      };
    case 'unionpay':
      return {
        provider, name,
        applyAt: [
          { label: 'UnionPay open platform (全渠道 gateway docs, SDK with the verification certificates)', url: 'https://open.unionpay.com' },
          { label: 'UnionPay merchant service platform (商户服务平台: certificates, merchant number)', url: 'https://merchant.unionpay.com' },
        ],
        prepare: [
          'Business licence, the legal representative’s ID, a settlement account, and the ICP-filed website where customers pay.',
          'An acquirer (收单机构) or a UnionPay branch to take the merchant application (商户入网).',
        ],
        addresses: [
          { label: '后台通知地址 (backUrl)', value: notify, note: 'Sent with every order; must be reachable from the internet on port 80 or 443.' },
          { label: '前台通知地址 (frontUrl)', value: returns, note: 'Sent with every order: the browser comes back here (display only).' },
        ],
        products: [
          { name: '网关支付 (PC, channelType 07)', codes: 'unionpay_pc' },
          { name: '手机网页支付 (WAP, channelType 08)', codes: 'unionpay_wap' },
        ],
        items: [
          { id: 'merchant', text: 'Complete 商户入网 for 网关支付 / 手机网页支付 and note the 15-character merchant number.', yields: 'mer_id' },
          { id: 'products', text: 'Have 网关支付 (PC) and 手机网页支付 (WAP) enabled on the merchant number.' },
          { id: 'sign_certificate', text: 'Download the signing certificate (.pfx) from the merchant service platform, then split it: openssl pkcs12 -in sign.pfx -clcerts -nokeys -out sign_cert.pem and openssl pkcs12 -in sign.pfx -nocerts -nodes -out sign_key.pem.', yields: 'sign_cert, sign_key' },
          { id: 'verify_certificates', text: 'Take the verification middle and root certificates (acp_prod_middle.cer, acp_prod_root.cer) from UnionPay’s SDK package.', yields: 'middle_cert, root_cert' },
          { id: 'callback_reachable', text: `Make ${notify} reachable from the internet (UnionPay posts the back notification there).` },
          STORE_ITEM,
        ],
        testNote: 'Without test credentials of your own (UnionPay’s test environment, gateway.test.95516.com), the gateway provisions a merchant at its UnionPay simulator.',
      };
    case 'paypal':
      return {
        provider, name,
        applyAt: [{ label: 'PayPal Developer dashboard (Apps & Credentials, webhooks)', url: 'https://developer.paypal.com/dashboard' }],
        prepare: ['A PayPal Business account (the payee), verified.'],
        addresses: [
          { label: 'Webhook URL', value: notify, note: 'Add it to the REST app (one listener per app); its Webhook ID goes into the config.' },
          { label: 'return_url / cancel_url', value: returns, note: 'Sent with every order.' },
        ],
        products: [{ name: 'Checkout (Orders v2, intent CAPTURE)', codes: 'paypal' }],
        items: [
          { id: 'business_account', text: 'Have a verified PayPal Business account (for test mode: a sandbox business account).' },
          { id: 'rest_app', text: 'Apps & Credentials → Create App (Merchant), in Sandbox or Live: note the client id and secret.', yields: 'client_id, client_secret' },
          { id: 'webhook', text: `In the app, Add Webhook: ${notify}, with the events CHECKOUT.ORDER.APPROVED, PAYMENT.CAPTURE.COMPLETED, PAYMENT.CAPTURE.PENDING, PAYMENT.CAPTURE.DENIED, PAYMENT.CAPTURE.DECLINED, PAYMENT.CAPTURE.REFUNDED, PAYMENT.CAPTURE.REVERSED, CHECKOUT.PAYMENT-APPROVAL.REVERSED; note the Webhook ID.`, yields: 'webhook_id' },
          { id: 'merchant_id', text: 'Note the account’s merchant id (Account settings): webhooks naming another payee are refused.', yields: 'merchant_id' },
          STORE_ITEM,
        ],
        testNote: 'Without sandbox credentials (base_url https://api-m.sandbox.paypal.com), the gateway provisions a REST app at its PayPal simulator.',
      };
    case 'stripe': {
      const events = channelFor('stripe')?.webhookEvents ?? [];
      return {
        provider, name,
        applyAt: [{ label: 'Stripe Dashboard (API keys, webhooks, payment methods)', url: 'https://dashboard.stripe.com' }],
        prepare: ['A Stripe account activated for live payments (business details, bank account).'],
        addresses: [
          { label: 'Webhook endpoint', value: notify, note: `Developers → Webhooks → Add endpoint, with the events ${events.join(', ')}; its signing secret goes into the config.` },
          { label: 'success_url / cancel_url', value: returns, note: 'Sent with every Checkout Session (display only).' },
        ],
        products: [{ name: 'Checkout (hosted), Cards with Apple Pay', codes: 'card, apple_pay' }],
        items: [
          { id: 'account', text: 'Activate the Stripe account (for test mode, test keys work at once).' },
          { id: 'secret_key', text: 'Developers → API keys: copy the secret key, or create a restricted key allowed to write Checkout Sessions and Refunds and read PaymentIntents.', yields: 'secret_key' },
          { id: 'webhook', text: `Developers → Webhooks → Add endpoint ${notify} with the events ${events.join(', ')}; reveal its signing secret (whsec_…).`, yields: 'webhook_secret' },
          { id: 'payment_methods', text: 'Settings → Payment methods: enable Cards and Apple Pay (hosted Checkout needs no domain verification).' },
          STORE_ITEM,
        ],
        testNote: 'Without a test key of your own, the gateway provisions an account at its Stripe simulator.',
      };
    }
  }
}

/** The item ids of a channel's checklist (what a tick may name). */
export function checklistIds(provider: Provider): string[] {
  return onboardingGuide(provider, { publicUrl: 'http://localhost', appId: 'app' }).items.map((i) => i.id);
}
