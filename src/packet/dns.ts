/**
 * The little of DNS (RFC 1035) the router's name server needs: a query with one question, and an answer to it with A
 * / AAAA records. Written here rather than taken from a library because none is in the dependencies and this is
 * small: the question is read with bounds checks (labels 1-63 bytes, name ≤ 255, no compression pointers: a query's
 * question never needs one), anything else is a DnsQueryError with the reason, never a throw of another kind.
 * Answers point back at the question's name (0xC00C) and stay within the 512 bytes of plain UDP DNS (TC set when
 * records had to be left out, so the client asks again over TCP), or within a TCP message's 65535 bytes.
 */

export const DNS_PORT = 53;
export const DNS_HEADER_LEN = 12;
/** Plain UDP DNS: an answer (without EDNS) fits in this. */
export const DNS_UDP_MAX = 512;
/** DNS over TCP: a message behind its 2-byte length (RFC 1035 §4.2.2). */
export const DNS_TCP_MAX = 65535;
export const QTYPE_A = 1;
export const QTYPE_AAAA = 28;
export const QCLASS_IN = 1;

export const RCODE = { noError: 0, formErr: 1, servFail: 2, nxDomain: 3, notImp: 4, refused: 5 } as const;
export type Rcode = (typeof RCODE)[keyof typeof RCODE];

/** A query the server can answer or forward: its id, flags, and its one question. */
export interface DnsQuery {
  readonly id: number;
  /** Recursion desired (echoed in the answer). */
  readonly rd: boolean;
  readonly opcode: number;
  /** The question's name, lowercased, labels joined by '.', no trailing dot ('' for the root). */
  readonly name: string;
  readonly qtype: number;
  readonly qclass: number;
  /** The question's bytes as sent (name, type, class), echoed in the answer. */
  readonly question: Uint8Array;
}

/** Why a datagram is not a query this server takes (counted, never thrown past the server). */
export class DnsQueryError extends Error {
  constructor(
    message: string,
    /** The id when the header was there: the server may answer FORMERR / NOTIMP to it. */
    readonly id?: number,
  ) {
    super(message);
    this.name = 'DnsQueryError';
  }
}

/** The query in `buf`, or a DnsQueryError. */
export function parseDnsQuery(buf: Uint8Array): DnsQuery {
  if (buf.length < DNS_HEADER_LEN) throw new DnsQueryError(`${buf.length} bytes is shorter than a DNS header`);
  const id = (buf[0]! << 8) | buf[1]!;
  const flags = (buf[2]! << 8) | buf[3]!;
  if ((flags & 0x8000) !== 0) throw new DnsQueryError('a response, not a query', id);
  const qd = (buf[4]! << 8) | buf[5]!;
  if (qd !== 1) throw new DnsQueryError(`${qd} questions (a query has one)`, id);
  let o = DNS_HEADER_LEN;
  const labels: string[] = [];
  let nameLen = 1;
  for (;;) {
    if (o >= buf.length) throw new DnsQueryError('the question name runs past the datagram', id);
    const len = buf[o]!;
    if (len === 0) {
      o++;
      break;
    }
    if ((len & 0xc0) !== 0) throw new DnsQueryError('a compression pointer (or reserved label type) in the question', id);
    nameLen += len + 1;
    if (nameLen > 255) throw new DnsQueryError('the question name is longer than 255 bytes', id);
    if (o + 1 + len > buf.length) throw new DnsQueryError('a label runs past the datagram', id);
    let label = '';
    for (let i = o + 1; i < o + 1 + len; i++) {
      const c = buf[i]!;
      // A '.' inside a label is escaped: the joined name must not read as two labels.
      label += c === 0x2e ? '\\.' : String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 32 : c);
    }
    labels.push(label);
    o += 1 + len;
  }
  if (o + 4 > buf.length) throw new DnsQueryError('the question has no type and class', id);
  const qtype = (buf[o]! << 8) | buf[o + 1]!;
  const qclass = (buf[o + 2]! << 8) | buf[o + 3]!;
  return { id, rd: (flags & 0x0100) !== 0, opcode: (flags >> 11) & 0xf, name: labels.join('.'), qtype, qclass, question: buf.slice(DNS_HEADER_LEN, o + 4) };
}

/** One answer record's data: an IPv4 (4 bytes, A) or IPv6 (16 bytes, AAAA) address. */
export interface DnsAddressAnswer {
  readonly address: Uint8Array;
  readonly ttl: number;
}

/**
 * The answer to `q`: its id, question and RD echoed, QR, AA (`authoritative`) and RA set, `rcode`, and one A / AAAA
 * record per address (each naming the question through a pointer), as many as fit in `maxSize` (DNS_UDP_MAX, or
 * DNS_TCP_MAX over TCP); TC is set when some did not fit.
 */
export function buildDnsAnswer(q: Pick<DnsQuery, 'id' | 'rd' | 'opcode' | 'question'>, rcode: Rcode, answers: readonly DnsAddressAnswer[] = [], authoritative = true, maxSize = DNS_UDP_MAX): Uint8Array {
  const fit = answers.filter((a) => a.address.length === 4 || a.address.length === 16);
  const sizeOf = (a: DnsAddressAnswer): number => 12 + a.address.length;
  const kept: DnsAddressAnswer[] = [];
  let size = DNS_HEADER_LEN + q.question.length;
  for (const a of fit) {
    if (size + sizeOf(a) > maxSize) break;
    kept.push(a);
    size += sizeOf(a);
  }
  const out = new Uint8Array(size);
  const flags = 0x8000 | ((q.opcode & 0xf) << 11) | (authoritative ? 0x0400 : 0) | (kept.length < fit.length ? 0x0200 : 0) | (q.rd ? 0x0100 : 0) | 0x0080 | (rcode & 0xf);
  put16(out, 0, q.id);
  put16(out, 2, flags);
  put16(out, 4, q.question.length > 0 ? 1 : 0);
  put16(out, 6, kept.length);
  out.set(q.question, DNS_HEADER_LEN);
  let o = DNS_HEADER_LEN + q.question.length;
  for (const a of kept) {
    put16(out, o, 0xc000 | DNS_HEADER_LEN); // the question's name
    put16(out, o + 2, a.address.length === 4 ? QTYPE_A : QTYPE_AAAA);
    put16(out, o + 4, QCLASS_IN);
    const ttl = Math.max(0, Math.min(0x7fffffff, Math.floor(a.ttl)));
    put16(out, o + 6, ttl >>> 16);
    put16(out, o + 8, ttl & 0xffff);
    put16(out, o + 10, a.address.length);
    out.set(a.address, o + 12);
    o += sizeOf(a);
  }
  return out;
}

/** An answer to a datagram that has a header but no usable question (FORMERR, NOTIMP): header only. */
export function buildDnsError(id: number, rcode: Rcode): Uint8Array {
  return buildDnsAnswer({ id, rd: false, opcode: 0, question: new Uint8Array(0) }, rcode, [], false);
}

/** The id of a response (QR set), or undefined when `buf` is not one: what a forwarded query's answer is checked by. */
export function dnsResponseId(buf: Uint8Array): number | undefined {
  if (buf.length < DNS_HEADER_LEN || (buf[2]! & 0x80) === 0) return undefined;
  return (buf[0]! << 8) | buf[1]!;
}

/** The wire form of a query for `name` (tests, and the lab's probes). */
export function buildDnsQuery(id: number, name: string, qtype = QTYPE_A): Uint8Array {
  const labels = name === '' ? [] : name.split('.');
  const qname = labels.flatMap((l) => [l.length, ...Buffer.from(l, 'latin1')]);
  const out = new Uint8Array(DNS_HEADER_LEN + qname.length + 5);
  put16(out, 0, id);
  put16(out, 2, 0x0100);
  put16(out, 4, 1);
  out.set(qname, DNS_HEADER_LEN);
  put16(out, DNS_HEADER_LEN + qname.length + 1, qtype);
  put16(out, DNS_HEADER_LEN + qname.length + 3, QCLASS_IN);
  return out;
}

/** The rcode and A / AAAA addresses of an answer (tests and probes); undefined when it does not parse. */
export function parseDnsAnswer(buf: Uint8Array): { id: number; rcode: number; addresses: string[]; truncated?: true } | undefined {
  if (buf.length < DNS_HEADER_LEN) return undefined;
  try {
    const id = (buf[0]! << 8) | buf[1]!;
    const rcode = buf[3]! & 0xf;
    const qd = (buf[4]! << 8) | buf[5]!;
    const an = (buf[6]! << 8) | buf[7]!;
    let o = DNS_HEADER_LEN;
    const skipName = (): void => {
      for (let hops = 0; hops < 128; hops++) {
        const len = buf[o]!;
        if (len === undefined) throw new Error('short');
        if ((len & 0xc0) === 0xc0) {
          o += 2;
          return;
        }
        o += 1 + len;
        if (len === 0) return;
      }
      throw new Error('long');
    };
    for (let i = 0; i < qd; i++) {
      skipName();
      o += 4;
    }
    const addresses: string[] = [];
    for (let i = 0; i < an; i++) {
      skipName();
      const type = (buf[o]! << 8) | buf[o + 1]!;
      const len = (buf[o + 8]! << 8) | buf[o + 9]!;
      o += 10;
      if (o + len > buf.length) return undefined;
      const rd = buf.subarray(o, o + len);
      if (type === QTYPE_A && len === 4) addresses.push([...rd].join('.'));
      if (type === QTYPE_AAAA && len === 16) addresses.push(Array.from({ length: 8 }, (_, k) => ((rd[2 * k]! << 8) | rd[2 * k + 1]!).toString(16)).join(':'));
      o += len;
    }
    return (buf[2]! & 0x02) !== 0 ? { id, rcode, addresses, truncated: true } : { id, rcode, addresses };
  } catch {
    return undefined;
  }
}

function put16(buf: Uint8Array, o: number, v: number): void {
  buf[o] = (v >> 8) & 0xff;
  buf[o + 1] = v & 0xff;
}
