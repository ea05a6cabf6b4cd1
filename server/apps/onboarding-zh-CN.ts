/**
 * The onboarding guides in zh-CN (onboarding.ts holds the English and the shape): the same
 * items, ids, addresses and product codes, the text in Chinese with full-width punctuation;
 * codes, field names and URLs stay as they are. test/unit/onboarding.test.ts holds the two
 * languages to the same ids and values.
 */
import type { Provider } from '../channels/types.ts';
import type { OnboardingGuide } from './onboarding.ts';

/** What a zh-CN guide takes from the English one: its addresses and names, made once. */
export interface GuideContext {
  provider: Provider;
  name: string;
  notify: string;
  returns: string;
  origin: string;
  host: string;
  stripeEvents: readonly string[];
}

const STORE_ITEM = { id: 'stored_checked', text: '已在渠道凭证页面保存凭证，并且在当前模式下“检查凭证”的每一步都通过。' };

export function onboardingGuideZh(c: GuideContext): OnboardingGuide {
  const { provider, name, notify, returns } = c;
  switch (provider) {
    case 'alipay':
      return {
        provider, name,
        applyAt: [
          { label: '支付宝开放平台（创建应用、密钥、应用网关）', url: 'https://open.alipay.com' },
          { label: '支付宝商家平台（签约产品）', url: 'https://b.alipay.com' },
        ],
        prepare: [
          '企业支付宝账号及其合作伙伴身份（PID，2088…）。',
          '营业执照、法定代表人身份证件、结算银行账户。',
          '顾客付款的网站（已备案）或 App：产品签约时会据此审核。',
        ],
        addresses: [
          { label: '应用网关', value: notify, note: '支付宝推送消息（资金转账结果、协议变更）的地址。Checkstand 也会把它作为 notify_url 随每笔订单发送。' },
          { label: 'notify_url', value: notify, note: '随每笔订单发送，无需登记。必须能从互联网访问。' },
          { label: 'return_url', value: returns, note: '随每笔电脑网站和手机网站支付订单发送（仅用于展示：支付结果以通知或查询为准）。' },
          { label: '授权回调地址', value: '（不需要）', note: '只用于用户信息授权和第三方应用授权，Checkstand 的支付不使用；留空或填写您自己网站的地址。' },
        ],
        products: [
          { name: '电脑网站支付', codes: 'alipay_pc' },
          { name: '手机网站支付', codes: 'alipay_wap' },
          { name: '当面付（扫码）', codes: 'alipay_qr' },
          { name: 'APP支付', codes: 'alipay_app' },
          { name: '转账到支付宝账户（单笔转账，alipay.fund.trans.uni.transfer）', codes: '转账、红包' },
          { name: '商家扣款（周期扣款）', codes: 'alipay_agreement（订阅）' },
        ],
        items: [
          { id: 'create_app', text: '在开放平台控制台创建网页/移动应用，记下 16 位的 APPID。', yields: 'app_id' },
          { id: 'cert_mode', text: '接口加签方式选择“公钥证书”。用支付宝开放平台密钥工具生成密钥对和 CSR，上传 CSR，下载 appCertPublicKey_<APPID>.crt、alipayCertPublicKey_RSA2.crt 和 alipayRootCert.crt。公钥模式（支付宝公钥）可用于收款，但转账和红包必须使用证书模式。', yields: 'private_key, app_cert, alipay_public_cert, alipay_root_cert (or alipay_public_key)' },
          { id: 'app_gateway', text: `把应用网关设置为 ${notify}。` },
          { id: 'products', text: '为应用添加要使用的产品（电脑网站支付、手机网站支付、当面付、APP支付；转账需单笔转账），并在商家平台签约。' },
          { id: 'seller_id', text: '记下合作伙伴身份（PID，2088…，在账户中心）：通知会据此校验。', yields: 'seller_id' },
          { id: 'submit_review', text: '提交审核，等待应用状态变为“已上线”；仅用于测试的应用可以使用支付宝沙箱环境（网关 openapi-sandbox.dl.alipaydev.com）。' },
          STORE_ITEM,
        ],
        testNote: '测试模式下如果没有保存支付宝沙箱凭证，网关会在它的支付宝模拟器中开通一个应用（证书模式）。',
      };
    case 'wechatpay':
      return {
        provider, name,
        applyAt: [
          { label: '微信支付商户平台', url: 'https://pay.weixin.qq.com' },
          { label: '微信公众平台（公众号、网页授权域名）', url: 'https://mp.weixin.qq.com' },
          { label: '微信开放平台（移动应用 AppID，用于 APP支付）', url: 'https://open.weixin.qq.com' },
        ],
        prepare: [
          '营业执照、法定代表人身份证件、对公账户。',
          '用于 JSAPI支付的已认证服务号或小程序，和/或用于 APP支付的开放平台移动应用，以及它们的 AppID。',
          `已备案并通过 HTTPS 提供服务的域名 ${c.host}，用于 H5支付和 JSAPI支付。`,
        ],
        addresses: [
          { label: 'JSAPI支付授权目录', value: `${c.origin}/`, note: '登记顶级地址，微信只校验域名。更深的目录必须与付款页面所在目录完全一致，而 Checkstand 的付款页面位于每笔支付各自的路径下。' },
          { label: 'H5支付域名', value: c.host, note: '打开 h5_url 的页面以及支付后 redirect_url 所在的域名。' },
          { label: '网页授权域名（在公众号上）', value: c.host, note: 'JSAPI支付会向微信获取付款人的 openid（snsapi_base），并跳转回这个域名；微信会在域名根目录请求 MP_verify_….txt 文件（请由您的代理提供）。' },
          { label: 'notify_url', value: notify, note: '随每笔订单发送，无需登记。必须是能从互联网访问的 HTTPS 地址。' },
        ],
        products: [
          { name: 'Native支付', codes: 'wechat_native' },
          { name: 'JSAPI支付', codes: 'wechat_jsapi' },
          { name: 'H5支付', codes: 'wechat_h5' },
          { name: 'APP支付', codes: 'wechat_app' },
          { name: '商家转账、现金红包', codes: '转账、红包' },
          { name: '委托代扣', codes: 'wechat_papay（订阅）' },
        ],
        items: [
          { id: 'merchant', text: '在商户平台申请商户入驻，记下商户号。', yields: 'mchid' },
          { id: 'appid_binding', text: '产品中心 → AppID账号管理：关联公众号/小程序的 AppID，以及用于 APP支付的开放平台移动应用，然后在 AppID 一侧确认关联。', yields: 'appid, app_appid' },
          { id: 'apiv3_key', text: '账户中心 → API安全：设置 APIv3 密钥（32 个字符）。', yields: 'apiv3_key' },
          { id: 'api_certificate', text: 'API安全 → 申请API证书：用微信支付证书工具生成商户 API 证书，保存 apiclient_key.pem，记下证书序列号。', yields: 'private_key, serial_no (apiclient_cert for red packets)' },
          { id: 'wechatpay_public_key', text: 'API安全 → 微信支付公钥：申请微信支付公钥，记下它的 ID（PUB_KEY_ID_…）。仍在使用平台证书的商户改为提供平台证书。', yields: 'wechatpay_public_key, wechatpay_public_key_id (or platform_certificates)' },
          { id: 'products', text: '产品中心：开通要使用的产品：Native支付、JSAPI支付、H5支付、APP支付。' },
          { id: 'jsapi_directory', text: `开发配置 → JSAPI支付授权目录：添加 ${c.origin}/` },
          { id: 'h5_domain', text: `开发配置 → H5支付域名：添加 ${c.host}` },
          { id: 'oauth_domain', text: `在公众号上：设置与开发 → 网页授权域名：添加 ${c.host}；如果使用 JSAPI支付，请保存 AppSecret。`, yields: 'app_secret' },
          STORE_ITEM,
        ],
        testNote: '微信支付 API v3 没有沙箱：如果没有您自己的测试凭证，网关会在它的微信支付模拟器中开通一个商户。',
      };
    case 'unionpay':
      return {
        provider, name,
        applyAt: [
          { label: '银联开放平台（全渠道网关文档、含验签证书的 SDK）', url: 'https://open.unionpay.com' },
          { label: '银联商户服务平台（证书、商户号）', url: 'https://merchant.unionpay.com' },
        ],
        prepare: [
          '营业执照、法定代表人身份证件、结算账户，以及顾客付款的已备案网站。',
          '受理商户入网申请的收单机构或银联分公司。',
        ],
        addresses: [
          { label: '后台通知地址（backUrl）', value: notify, note: '随每笔订单发送；必须能从互联网通过 80 或 443 端口访问。' },
          { label: '前台通知地址（frontUrl）', value: returns, note: '随每笔订单发送：浏览器支付后回到这里（仅用于展示）。' },
        ],
        products: [
          { name: '网关支付（PC，channelType 07）', codes: 'unionpay_pc' },
          { name: '手机网页支付（WAP，channelType 08）', codes: 'unionpay_wap' },
        ],
        items: [
          { id: 'merchant', text: '完成网关支付、手机网页支付的商户入网，记下 15 位商户号。', yields: 'mer_id' },
          { id: 'products', text: '为商户号开通网关支付（PC）和手机网页支付（WAP）。' },
          { id: 'sign_certificate', text: '从商户服务平台下载签名证书（.pfx），然后拆分：openssl pkcs12 -in sign.pfx -clcerts -nokeys -out sign_cert.pem 和 openssl pkcs12 -in sign.pfx -nocerts -nodes -out sign_key.pem。', yields: 'sign_cert, sign_key' },
          { id: 'verify_certificates', text: '从银联 SDK 包中取出验签中级证书和根证书（acp_prod_middle.cer、acp_prod_root.cer）。', yields: 'middle_cert, root_cert' },
          { id: 'callback_reachable', text: `确保 ${notify} 能从互联网访问（银联会把后台通知发到这里）。` },
          STORE_ITEM,
        ],
        testNote: '如果没有您自己的测试凭证（银联测试环境 gateway.test.95516.com），网关会在它的银联模拟器中开通一个商户。',
      };
    case 'paypal':
      return {
        provider, name,
        applyAt: [{ label: 'PayPal 开发者控制台（Apps & Credentials、Webhook）', url: 'https://developer.paypal.com/dashboard' }],
        prepare: ['一个已验证的 PayPal 企业账户（收款方）。'],
        addresses: [
          { label: 'Webhook URL', value: notify, note: '添加到 REST 应用（每个应用一个监听地址）；它的 Webhook ID 填入配置。' },
          { label: 'return_url / cancel_url', value: returns, note: '随每笔订单发送。' },
        ],
        products: [{ name: 'Checkout（Orders v2，intent CAPTURE）', codes: 'paypal' }],
        items: [
          { id: 'business_account', text: '准备一个已验证的 PayPal 企业账户（测试模式下使用沙箱企业账户）。' },
          { id: 'rest_app', text: 'Apps & Credentials → Create App（Merchant），在 Sandbox 或 Live 下创建：记下 client id 和 secret。', yields: 'client_id, client_secret' },
          { id: 'webhook', text: `在应用中 Add Webhook：${notify}，订阅事件 CHECKOUT.ORDER.APPROVED、PAYMENT.CAPTURE.COMPLETED、PAYMENT.CAPTURE.PENDING、PAYMENT.CAPTURE.DENIED、PAYMENT.CAPTURE.DECLINED、PAYMENT.CAPTURE.REFUNDED、PAYMENT.CAPTURE.REVERSED、CHECKOUT.PAYMENT-APPROVAL.REVERSED；记下 Webhook ID。`, yields: 'webhook_id' },
          { id: 'merchant_id', text: '记下账户的 merchant id（Account settings）：收款方不符的 Webhook 会被拒绝。', yields: 'merchant_id' },
          STORE_ITEM,
        ],
        testNote: '如果没有沙箱凭证（base_url https://api-m.sandbox.paypal.com），网关会在它的 PayPal 模拟器中开通一个 REST 应用。',
      };
    case 'stripe':
      return {
        provider, name,
        applyAt: [{ label: 'Stripe 控制台（API 密钥、Webhook、支付方式）', url: 'https://dashboard.stripe.com' }],
        prepare: ['一个已激活正式收款的 Stripe 账户（企业信息、银行账户）。'],
        addresses: [
          { label: 'Webhook 端点', value: notify, note: `Developers → Webhooks → Add endpoint，订阅事件 ${c.stripeEvents.join('、')}；它的签名密钥填入配置。` },
          { label: 'success_url / cancel_url', value: returns, note: '随每个 Checkout Session 发送（仅用于展示）。' },
        ],
        products: [{ name: 'Checkout（托管页面）、银行卡和 Apple Pay', codes: 'card, apple_pay' }],
        items: [
          { id: 'account', text: '激活 Stripe 账户（测试模式下测试密钥可立即使用）。' },
          { id: 'secret_key', text: 'Developers → API keys：复制密钥，或创建一个受限密钥，允许写入 Checkout Sessions 和 Refunds、读取 PaymentIntents。', yields: 'secret_key' },
          { id: 'webhook', text: `Developers → Webhooks → Add endpoint ${notify}，订阅事件 ${c.stripeEvents.join('、')}；查看它的签名密钥（whsec_…）。`, yields: 'webhook_secret' },
          { id: 'payment_methods', text: 'Settings → Payment methods：启用 Cards 和 Apple Pay（托管的 Checkout 不需要验证域名）。' },
          STORE_ITEM,
        ],
        testNote: '如果没有您自己的测试密钥，网关会在它的 Stripe 模拟器中开通一个账户。',
      };
  }
}
