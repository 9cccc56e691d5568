import { PNG } from 'pngjs';

/** One square image for an .ico: `rgba` is straight-alpha RGBA, top row first. */
export interface IcoImage {
  readonly size: number;
  readonly rgba: Buffer;
}

/** PNG bytes of a square straight-alpha RGBA image. */
export function encodePng(size: number, rgba: Buffer): Buffer {
  const png = new PNG({ width: size, height: size });
  rgba.copy(png.data);
  return PNG.sync.write(png, { colorType: 6 });
}

/**
 * A Windows .ico: sizes below 256 as 32-bit BMP entries (what every Windows component, NSIS and
 * the resource compilers read), 256 as a PNG entry (Vista and later), the way Windows' own icons
 * are built. Entries are sorted by size.
 */
export function encodeIco(images: readonly IcoImage[]): Buffer {
  const sorted = [...images].sort((a, b) => a.size - b.size);
  const payloads = sorted.map((image) => (image.size >= 256 ? encodePng(image.size, image.rgba) : bmpEntry(image)));
  const header = Buffer.alloc(6 + 16 * sorted.length);
  header.writeUInt16LE(0, 0); // reserved
  header.writeUInt16LE(1, 2); // type: icon
  header.writeUInt16LE(sorted.length, 4);
  let offset = header.length;
  sorted.forEach((image, index) => {
    const entry = 6 + 16 * index;
    if (image.size > 256) throw new Error(`an .ico entry is at most 256 px, not ${image.size}`);
    header.writeUInt8(image.size === 256 ? 0 : image.size, entry); // width (0 means 256)
    header.writeUInt8(image.size === 256 ? 0 : image.size, entry + 1); // height
    header.writeUInt8(0, entry + 2); // palette size
    header.writeUInt8(0, entry + 3); // reserved
    header.writeUInt16LE(1, entry + 4); // colour planes
    header.writeUInt16LE(32, entry + 6); // bits per pixel
    header.writeUInt32LE(payloads[index]!.length, entry + 8);
    header.writeUInt32LE(offset, entry + 12);
    offset += payloads[index]!.length;
  });
  return Buffer.concat([header, ...payloads]);
}

/** BITMAPINFOHEADER + BGRA rows bottom-up + an all-zero AND mask (the alpha channel decides). */
function bmpEntry(image: IcoImage): Buffer {
  const { size, rgba } = image;
  const maskRowBytes = Math.ceil(size / 32) * 4;
  const pixelBytes = size * size * 4;
  const out = Buffer.alloc(40 + pixelBytes + maskRowBytes * size);
  out.writeUInt32LE(40, 0); // biSize
  out.writeInt32LE(size, 4); // biWidth
  out.writeInt32LE(size * 2, 8); // biHeight: XOR image + AND mask
  out.writeUInt16LE(1, 12); // biPlanes
  out.writeUInt16LE(32, 14); // biBitCount
  out.writeUInt32LE(0, 16); // BI_RGB
  out.writeUInt32LE(pixelBytes + maskRowBytes * size, 20); // biSizeImage
  for (let y = 0; y < size; y += 1) {
    const sourceRow = (size - 1 - y) * size * 4;
    for (let x = 0; x < size; x += 1) {
      const source = sourceRow + x * 4;
      const target = 40 + (y * size + x) * 4;
      out[target] = rgba[source + 2]!;
      out[target + 1] = rgba[source + 1]!;
      out[target + 2] = rgba[source]!;
      out[target + 3] = rgba[source + 3]!;
    }
  }
  return out;
}

/** What an .ico's directory says: each entry's size in px, bits per pixel and whether it is a PNG. */
export function readIcoDirectory(ico: Buffer): { size: number; bitsPerPixel: number; png: boolean; bytes: Buffer }[] {
  if (ico.readUInt16LE(0) !== 0 || ico.readUInt16LE(2) !== 1) throw new Error('not an .ico (reserved 0, type 1)');
  const count = ico.readUInt16LE(4);
  const entries = [];
  for (let index = 0; index < count; index += 1) {
    const entry = 6 + 16 * index;
    const width = ico.readUInt8(entry) || 256;
    const height = ico.readUInt8(entry + 1) || 256;
    if (width !== height) throw new Error(`entry ${index} is not square (${width}x${height})`);
    const length = ico.readUInt32LE(entry + 8);
    const offset = ico.readUInt32LE(entry + 12);
    if (offset + length > ico.length) throw new Error(`entry ${index} runs past the end of the file`);
    const bytes = ico.subarray(offset, offset + length);
    entries.push({ size: width, bitsPerPixel: ico.readUInt16LE(entry + 6), png: bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), bytes });
  }
  return entries;
}
