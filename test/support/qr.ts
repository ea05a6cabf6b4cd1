import jsqr from 'jsqr';
import type { Page } from 'playwright-core';

// A CommonJS package whose types declare an ES default export.
const jsQR = jsqr.default;

/**
 * Reads the QR code an image shows, as a phone would: the page's own browser draws the image
 * (an <img> of the page named by `selector`, or a new one loading `src`) onto a white canvas at
 * `scale` times its size, and jsQR (a decoder that shares nothing with the encoder) reads the
 * pixels. Undefined when no code is found.
 */
export async function readQrInPage(page: Page, image: { selector: string } | { src: string }, scale = 2): Promise<string | undefined> {
  const { width, height, pixels } = await page.evaluate(
    async ({ image, scale }) => {
      let img: HTMLImageElement;
      if ('selector' in image) {
        img = document.querySelector(image.selector) as HTMLImageElement;
        if (!img) throw new Error(`no image ${image.selector}`);
      } else {
        img = new Image();
        img.src = image.src;
      }
      await img.decode();
      const width = Math.round(img.naturalWidth * scale);
      const height = Math.round(img.naturalHeight * scale);
      const canvas = document.createElement('canvas');
      canvas.width = width + 32;
      canvas.height = height + 32;
      const ctx = canvas.getContext('2d')!;
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(img, 16, 16, width, height);
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let binary = '';
      for (let i = 0; i < data.length; i += 0x8000) binary += String.fromCharCode(...data.subarray(i, i + 0x8000));
      return { width: canvas.width, height: canvas.height, pixels: btoa(binary) };
    },
    { image, scale },
  );
  const rgba = new Uint8ClampedArray(Buffer.from(pixels, 'base64'));
  return jsQR(rgba, width, height, { inversionAttempts: 'dontInvert' })?.data;
}

/**
 * The dark modules of a QR code in the SVG that the `qrcode` package writes (one stroked path of
 * `M x y`, `m dx dy` and `h dx` runs, half a module below each row's top), as rows of 0 and 1
 * without the quiet zone of `margin` modules.
 */
export function svgModules(svg: string, margin: number): number[][] {
  const size = Number(/viewBox="0 0 (\d+) \1"/.exec(svg)?.[1]);
  const d = /<path stroke="#000000" d="([^"]+)"/.exec(svg)?.[1];
  if (!size || !d) throw new Error('not an SVG of the qrcode package');
  const grid = Array.from({ length: size }, () => new Array<number>(size).fill(0));
  let x = 0;
  let y = 0;
  for (const [, cmd, args] of d.matchAll(/([MmHhVv])([^MmHhVv]*)/g)) {
    const n = args.trim().split(/[\s,]+/).filter(Boolean).map(Number);
    if (cmd === 'M') [x, y] = n;
    else if (cmd === 'm') [x, y] = [x + n[0], y + n[1]];
    else if (cmd === 'h') {
      for (let i = 0; i < n[0]; i++) grid[Math.floor(y)][x + i] = 1;
      x += n[0];
    } else throw new Error(`unexpected path command ${cmd}`);
  }
  return grid.slice(margin, size - margin).map((row) => row.slice(margin, size - margin));
}
