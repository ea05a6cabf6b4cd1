/** QR codes as SVG, for the cashier's QR view and the direct API's display_qr_code.image_url. */

// Loaded with the first QR code: qrcode and its PNG encoder are ~60 modules a process that
// serves no QR code never needs at start.
let qrcodeModule: Promise<typeof import('qrcode')> | undefined;

export async function qrSvg(data: string, size: { margin?: number; width?: number } = {}): Promise<string> {
  const QRCode = await (qrcodeModule ??= import('qrcode'));
  return QRCode.toString(data, { type: 'svg', margin: size.margin ?? 1, ...(size.width ? { width: size.width } : {}), errorCorrectionLevel: 'M' });
}
