/** The Internet checksum (RFC 1071) and the UDP/TCP pseudo-header sum for IPv4 and IPv6. */

/** One's-complement sum of 16-bit words, not yet folded or inverted; `initial` chains partial sums. */
export function sum16(buf: Uint8Array, start = 0, end = buf.length, initial = 0): number {
  let s = initial;
  let i = start;
  for (; i + 1 < end; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) s += buf[i]! << 8; // odd length: pad with a zero byte
  return s;
}

export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** The checksum field value over `buf[start, end)`. */
export function internetChecksum(buf: Uint8Array, start = 0, end = buf.length, initial = 0): number {
  return ~fold(sum16(buf, start, end, initial)) & 0xffff;
}

/** Sum of the pseudo-header (src, dst, protocol, upper-layer length) for IPv4 or IPv6 addresses. */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  return sum16(src) + sum16(dst) + protocol + (length >>> 16) + (length & 0xffff);
}
