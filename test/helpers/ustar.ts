// The ustar header of one regular file (owner root, mode 0644, mtime 0), for the test images that
// the e2e world and the bench build without a tar tool. Data follows it, padded to 512 bytes; an
// archive ends with two zero blocks.

function octal(value: number, width: number): string {
  // NUL-terminated, zero-padded octal, as ustar wants.
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

export function ustarHeader(name: string, size: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  const header = Buffer.alloc(512);
  const put = (offset: number, text: string): void => void header.write(text, offset, 'latin1');
  put(0, name);
  put(100, octal(0o644, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(size, 12));
  put(136, octal(0, 12));
  put(148, '        '); // the checksum counts as spaces while it is computed
  put(156, '0');
  put(257, 'ustar\0');
  put(263, '00');
  put(265, 'root');
  put(297, 'root');
  let sum = 0;
  for (const byte of header) sum += byte;
  put(148, `${sum.toString(8).padStart(6, '0')}\0 `);
  return header;
}

/** Zero bytes after `size` bytes of data up to the next 512-byte block. */
export function ustarPadding(size: number): Buffer {
  return Buffer.alloc((512 - (size % 512)) % 512);
}

/** The two zero blocks that end an archive. */
export const USTAR_END = Buffer.alloc(1024);
