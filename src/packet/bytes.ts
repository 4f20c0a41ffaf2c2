/** Bounds-checked byte access and the text forms of MAC and IP addresses. Pure; Uint8Array only. */
import { isIPv4, isIPv6 } from 'node:net';
import { PacketError } from '../errors.js';

/** Throws a PacketError unless `need` bytes are available at `offset` in `buf`. */
export function need(buf: Uint8Array, offset: number, need: number, layer: string): void {
  if (offset < 0 || offset + need > buf.length) {
    throw new PacketError(layer, offset, `needs ${need} bytes, ${Math.max(0, buf.length - offset)} available`);
  }
}

export function u16(buf: Uint8Array, o: number): number {
  return (buf[o]! << 8) | buf[o + 1]!;
}

export function putU16(buf: Uint8Array, o: number, v: number): void {
  buf[o] = (v >>> 8) & 0xff;
  buf[o + 1] = v & 0xff;
}

export function formatMac(buf: Uint8Array, o = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + buf[o + i]!.toString(16).padStart(2, '0');
  return s;
}

export function parseMac(text: string): Uint8Array {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text);
  if (!m) throw new PacketError('mac', 0, `"${text}" is not a MAC address`);
  return Uint8Array.from(m.slice(1), (h) => parseInt(h, 16));
}

export function isMulticastMac(buf: Uint8Array, o = 0): boolean {
  return (buf[o]! & 1) === 1;
}

/** IPv4 (4 bytes) or IPv6 (16 bytes) address from text. */
export function parseIp(text: string): Uint8Array {
  if (isIPv4(text)) return Uint8Array.from(text.split('.'), Number);
  if (!isIPv6(text)) throw new PacketError('ip', 0, `"${text}" is not an IP address`);
  let t = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t); // embedded IPv4 tail, e.g. ::ffff:198.51.100.1
  if (v4) {
    const b = parseIp(v4[1]!);
    t = `${t.slice(0, -v4[1]!.length)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head = '', tail] = t.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const tl = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => putU16(out, i * 2, parseInt(g, 16)));
  return out;
}

/**
 * One spelling per address, whoever wrote it (config, another host's etcd record): the text `formatIp` gives, so
 * addresses compare equal to what the kernel reports as a datagram's source. Throws a PacketError on text that is
 * not an address (callers validate first).
 */
export function canonicalIp(text: string): string {
  return formatIp(parseIp(text));
}

/** Canonical text: dotted quad, or RFC 5952 for IPv6 (what the kernel reports as a datagram's source). */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new PacketError('ip', 0, `an address has 4 or 16 bytes, not ${b.length}`);
  const g = Array.from({ length: 8 }, (_, i) => u16(b, i * 2));
  let best = -1;
  let bestLen = 1; // RFC 5952: a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  if (best === 0 && bestLen === 5 && g[5] === 0xffff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}
