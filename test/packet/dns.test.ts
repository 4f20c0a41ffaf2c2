/**
 * The DNS codec of the name server (src/packet/dns.ts): a query's one question read with bounds checks, answers with
 * A / AAAA records that point at the question, FORMERR headers; random and mutated datagrams only ever make a
 * DnsQueryError (never another throw, never a read past the end).
 */
import t from 'tap';
import {
  buildDnsAnswer,
  buildDnsError,
  buildDnsQuery,
  DNS_UDP_MAX,
  DNS_TCP_MAX,
  DnsQueryError,
  dnsResponseId,
  parseDnsAnswer,
  parseDnsQuery,
  parseIp,
  QTYPE_A,
  QTYPE_AAAA,
  RCODE,
} from '../../src/packet/index.js';
import { mulberry32 } from '../helpers/prng.js';

t.test('a query is read: id, RD, the name lowercased, type and class; the answer echoes it', async (t) => {
  const raw = buildDnsQuery(0xbeef, 'Web.Blue', QTYPE_A);
  const q = parseDnsQuery(raw);
  t.match(q, { id: 0xbeef, rd: true, opcode: 0, name: 'web.blue', qtype: QTYPE_A, qclass: 1 });
  t.same([...q.question], [...raw.subarray(12)], 'the question as sent');
  const answer = buildDnsAnswer(q, RCODE.noError, [{ address: parseIp('198.18.1.2'), ttl: 0 }, { address: parseIp('fd00::2'), ttl: 5 }]);
  t.equal(dnsResponseId(answer), 0xbeef, 'a response with the query id');
  t.equal(answer[2]! & 0x85, 0x85, 'QR, AA and RD set');
  t.equal(answer[3], 0x80, 'RA, NOERROR');
  t.same(parseDnsAnswer(answer), { id: 0xbeef, rcode: 0, addresses: ['198.18.1.2', 'fd00:0:0:0:0:0:0:2'] });
  t.equal(parseDnsQuery(buildDnsQuery(1, 'a.b\u0000c')).name, 'a.b\u0000c', 'any byte in a label is kept (it matches no name)');
  const dotted = new Uint8Array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x2e, 0x62, 0, 0, 1, 0, 1]);
  t.equal(parseDnsQuery(dotted).name, 'a\\.b', "a '.' inside a label is escaped: it is not two labels");
  t.equal(parseDnsQuery(buildDnsQuery(1, '')).name, '', 'the root');
  t.same(parseDnsAnswer(buildDnsAnswer(q, RCODE.nxDomain)), { id: 0xbeef, rcode: 3, addresses: [] }, 'NXDOMAIN, no records');
  t.same(parseDnsAnswer(buildDnsError(7, RCODE.formErr)), { id: 7, rcode: 1, addresses: [] }, 'FORMERR: the header alone');
});

t.test('answers stay within 512 bytes', async (t) => {
  const q = parseDnsQuery(buildDnsQuery(1, 'x'.repeat(63) + '.' + 'y'.repeat(63), QTYPE_AAAA));
  const many = Array.from({ length: 100 }, (_, i) => ({ address: parseIp(`fd00::${i + 1}`), ttl: 0 }));
  const a = buildDnsAnswer(q, RCODE.noError, many);
  t.ok(a.length <= DNS_UDP_MAX, `${a.length} bytes`);
  const n = parseDnsAnswer(a)!.addresses.length;
  t.ok(n > 10 && n < 100, `${n} of 100 records kept`);
  t.equal(parseDnsAnswer(a)!.truncated, true, 'records left out: TC set (the client asks again over TCP)');
  const whole = buildDnsAnswer(q, RCODE.noError, many, true, DNS_TCP_MAX);
  t.same(parseDnsAnswer(whole)?.addresses.length, 100, 'over TCP: all of them');
  t.notOk(parseDnsAnswer(whole)?.truncated, 'and no TC');
  t.notOk(parseDnsAnswer(buildDnsAnswer(q, RCODE.noError, many.slice(0, 2)))?.truncated, 'all fit: no TC');
  t.equal(buildDnsAnswer(q, 0, [{ address: new Uint8Array(5), ttl: 0 }]).length, 12 + q.question.length, 'an address of neither length is left out');
});

t.test('malformed queries are DnsQueryErrors with the reason (and the id when there was one)', async (t) => {
  const ok = buildDnsQuery(0x1234, 'abc.def');
  const cases: [string, Uint8Array, RegExp, number | undefined][] = [
    ['empty', new Uint8Array(0), /shorter than a DNS header/, undefined],
    ['11 bytes', ok.subarray(0, 11), /shorter than a DNS header/, undefined],
    ['a response', Uint8Array.from(ok, (b, i) => (i === 2 ? b | 0x80 : b)), /a response/, 0x1234],
    ['two questions', Uint8Array.from(ok, (b, i) => (i === 5 ? 2 : b)), /2 questions/, 0x1234],
    ['no question', Uint8Array.from(ok, (b, i) => (i === 5 ? 0 : b)), /0 questions/, 0x1234],
    ['cut in a label', ok.subarray(0, 15), /label runs past/, 0x1234],
    ['no end of name', ok.subarray(0, 12 + 4), /runs past the datagram|label runs past/, 0x1234],
    ['no type', ok.subarray(0, ok.length - 3), /no type and class/, 0x1234],
    ['a pointer', Uint8Array.from([...ok.subarray(0, 12), 0xc0, 0x0c, 0, 1, 0, 1]), /compression pointer/, 0x1234],
    ['a long name', buildDnsQuery(9, Array.from({ length: 5 }, () => 'x'.repeat(63)).join('.')), /longer than 255/, 9],
  ];
  for (const [what, buf, message, id] of cases) {
    const err = (() => {
      try {
        parseDnsQuery(buf);
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    t.ok(err instanceof DnsQueryError, `${what}: a DnsQueryError`);
    t.match((err as DnsQueryError).message, message, `${what}: ${(err as Error).message}`);
    t.equal((err as DnsQueryError).id, id, `${what}: id ${id}`);
  }
});

t.test('fuzz: random and mutated datagrams never throw anything but DnsQueryError', async (t) => {
  const rnd = mulberry32(0x16d5);
  const seeds = [buildDnsQuery(1, 'a1'), buildDnsQuery(2, 'web.blue', QTYPE_AAAA), buildDnsQuery(3, '')];
  let parsed = 0;
  let refused = 0;
  for (let i = 0; i < 20_000; i++) {
    let buf: Uint8Array;
    if (i % 2 === 0) {
      buf = Uint8Array.from({ length: Math.floor(rnd() * 80) }, () => Math.floor(rnd() * 256));
      if (buf.length > 5 && rnd() < 0.7) {
        buf[2] = 0;
        buf[4] = 0;
        buf[5] = 1; // mostly a query header, so the question parser is what gets fuzzed
      }
    } else {
      const seed = seeds[i % seeds.length]!;
      buf = Uint8Array.from(seed);
      for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) buf[12 + Math.floor(rnd() * (buf.length - 12))] = Math.floor(rnd() * 256);
      if (rnd() < 0.3) buf = buf.subarray(0, Math.floor(rnd() * buf.length));
    }
    try {
      const q = parseDnsQuery(buf);
      parsed++;
      const a = buildDnsAnswer(q, RCODE.noError, [{ address: parseIp('198.18.0.9'), ttl: 0 }]);
      if (a.length > DNS_UDP_MAX) t.fail(`answer of ${a.length} bytes`);
    } catch (err) {
      if (!(err instanceof DnsQueryError)) {
        t.fail(`${Buffer.from(buf).toString('hex')}: ${String(err)}`);
        return;
      }
      refused++;
    }
    parseDnsAnswer(buf); // never throws either
  }
  t.ok(parsed > 100 && refused > 100, `${parsed} parsed, ${refused} refused as DnsQueryError`);
});
