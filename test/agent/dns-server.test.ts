/**
 * Names across hosts, the agent's side (issue 16): the name server's answers (container names from every host, A /
 * AAAA / NODATA, everything else forwarded to the host's resolvers, bounded), malformed datagrams counted and never
 * a crash; which Docker networks are ours and what names their containers have (dockerd's answers as 20.10 gives
 * them); `name` and `name.<network>`. Then the server for real on 127.0.0.1 (an ephemeral port), over UDP and TCP:
 * several queries per connection, long answers whole over TCP (ours, and forwarded ones from a fake upstream on
 * loopback that truncates over UDP), hostile TCP clients (silent, dribbling, too many, bad framing) bounded.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type Socket as TcpSocket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { ServedNetwork } from '../../src/agent/daemon.js';
import { DockerNames, resolveName, servedIndexOf, unixDockerGet, watchDockerEvents, type DockerGet } from '../../src/agent/docker-names.js';
import { DnsResponder, DnsServer, DnsTcpReader, MAX_FORWARDS, MAX_TCP_CONNECTIONS, tcpUpstream, udpUpstream, upstreamsOf, type Upstream } from '../../src/agent/dns-server.js';
import { buildDnsAnswer, buildDnsQuery, DNS_TCP_MAX, parseDnsAnswer, parseDnsQuery, parseIp, QTYPE_A, QTYPE_AAAA, RCODE } from '../../src/packet/index.js';
import { mulberry32 } from '../helpers/prng.js';

const many = Array.from({ length: 60 }, (_, i) => `198.18.30.${i + 1}`); // 60 A records: more than 512 bytes
const names: Record<string, string[]> = { a2: ['198.18.29.2'], 'a2.blue': ['198.18.29.2'], web: ['198.18.28.2', 'fd00::2'], scaled: many };
const lookup = (n: string): string[] | undefined => names[n];
const answer = async (r: DnsResponder, name: string, qtype = QTYPE_A) => parseDnsAnswer((await r.handle(buildDnsQuery(77, name, qtype)))!);

t.test('answers: container names from the lookup, everything else forwarded', async (t) => {
  const asked: string[] = [];
  const upstream: Upstream = async (server, query) => {
    asked.push(server);
    if (server === '10.0.0.1') throw new Error('timeout');
    const a = Uint8Array.from(query);
    a[2]! |= 0x80;
    return a;
  };
  const r = new DnsResponder(lookup, () => ['10.0.0.1', '10.0.0.2'], upstream);
  t.same(await answer(r, 'A2'), { id: 77, rcode: 0, addresses: ['198.18.29.2'] }, 'a name of another host, any case');
  t.same(await answer(r, 'web', QTYPE_AAAA), { id: 77, rcode: 0, addresses: ['fd00:0:0:0:0:0:0:2'] }, 'AAAA: the IPv6 addresses');
  t.same(await answer(r, 'a2', QTYPE_AAAA), { id: 77, rcode: 0, addresses: [] }, 'AAAA of an IPv4-only container: NODATA at once (no one waits)');
  t.same(await answer(r, 'a2', 15), { id: 77, rcode: 0, addresses: [] }, 'MX: NODATA');
  t.same(await answer(r, 'example.org'), { id: 77, rcode: 0, addresses: [] }, "another name: the upstream's answer, relayed");
  t.same(asked, ['10.0.0.1', '10.0.0.2'], 'the next upstream when one does not answer');
  t.match(r.counters, { queries: 5, answered: 4, forwarded: 1, forwardFailed: 0, malformed: 0 });

  const none = new DnsResponder(lookup, () => [], upstream);
  t.equal((await answer(none, 'example.org'))?.rcode, 5, 'no upstream: REFUSED');
  const dead = new DnsResponder(lookup, () => ['10.0.0.1'], upstream);
  t.equal((await answer(dead, 'example.org'))?.rcode, 2, 'no upstream answers: SERVFAIL');
  t.match(dead.counters, { forwarded: 1, forwardFailed: 1 });
});

t.test('bad datagrams are counted, never a crash; forwards are bounded', async (t) => {
  const r = new DnsResponder(lookup, () => ['10.0.0.1'], () => new Promise(() => undefined));
  t.equal(await r.handle(new Uint8Array(3)), undefined, 'no header: dropped');
  const two = buildDnsQuery(9, 'a2');
  two[5] = 2;
  t.equal(parseDnsAnswer((await r.handle(two))!)?.rcode, 1, 'two questions: FORMERR');
  const notify = buildDnsQuery(9, 'a2');
  notify[2] = 0x20; // opcode 4 (NOTIFY)
  t.equal(parseDnsAnswer((await r.handle(notify))!)?.rcode, 4, 'another opcode: NOTIMP');
  t.equal(r.counters.malformed, 3);
  for (let i = 0; i < MAX_FORWARDS; i++) void r.handle(buildDnsQuery(i, `x${i}.example`));
  t.equal(parseDnsAnswer((await r.handle(buildDnsQuery(1, 'one.more')))!)?.rcode, 2, `past ${MAX_FORWARDS} forwards in flight: SERVFAIL`);
  t.equal(r.counters.busy, 1);
  t.equal(parseDnsAnswer((await r.handle(buildDnsQuery(1, 'a2')))!)?.addresses[0], '198.18.29.2', 'names are still answered');

  const rnd = mulberry32(53);
  const fuzz = new DnsResponder(lookup, () => [], async () => new Uint8Array(0));
  for (let i = 0; i < 5000; i++) {
    const buf = Uint8Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256));
    if (buf.length > 5 && i % 2 === 0) [buf[2], buf[4], buf[5]] = [0, 0, 1];
    await fuzz.handle(buf); // rejects would fail the test
  }
  t.ok(fuzz.counters.malformed > 1000, `${fuzz.counters.malformed} of 5000 random datagrams counted as malformed`);
});

t.test('upstreams from resolv.conf, without the server itself', async (t) => {
  const conf = '# x\nsearch lab\nnameserver 169.254.53.53\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver bogus\nnameserver 10.0.0.1\nnameserver 10.0.0.2\n';
  t.same(upstreamsOf(conf, '169.254.53.53'), ['127.0.0.53', 'fe80::1', '10.0.0.1'], 'at most three, as the C library');
  t.same(upstreamsOf('', '169.254.53.53'), []);
});

t.test('name and name.<network>: zones are the overlay and its Docker networks here', async (t) => {
  const blue = { zones: ['blue', 'vxr-blue'], lookup: (n: string) => (n === 'a2' ? [{ ip: '198.18.29.2', mac: 'm', hostId: 'h2' }] : []) };
  const red = { zones: ['red'], lookup: (n: string) => (n === 'a2' ? [{ ip: '10.9.0.2', mac: 'm', hostId: 'h3' }] : n === 'db.x' ? [{ ip: '10.9.0.3', mac: 'm', hostId: 'h3' }] : []) };
  t.same(resolveName('a2', [blue, red]), ['198.18.29.2', '10.9.0.2'], 'a bare name: on every network');
  t.same(resolveName('a2.blue', [blue, red]), ['198.18.29.2'], 'name.network: on that one');
  t.same(resolveName('a2.vxr-blue', [blue, red]), ['198.18.29.2'], "name.<the Docker network's name here>");
  t.same(resolveName('db.x.red', [blue, red]), ['10.9.0.3'], 'a dotted container name');
  t.equal(resolveName('a2.green', [blue, red]), undefined, 'another zone: not ours (forwarded)');
  t.equal(resolveName('blue', [blue, red]), undefined);
});

const served = (name: string, bridge: string, subnet: string, vni: number): ServedNetwork => ({ name, vni, tap: `vxr${vni}`, bridge, mtu: 65000, configuredMtu: null, containerMtu: 1450, startedFrom: 'etcd', subnet });

t.test("dockerd's networks and containers: ours by driver or bridge, names and aliases", async (t) => {
  const nets = [served('blue', 'br0', '198.18.0.0/15', 42), served('red', 'br1', '10.9.0.0/16', 7)];
  const id = (c: string): string => c.repeat(64);
  const dockerd: Record<string, unknown> = {
    '/networks': [
      { Name: 'blue', Id: id('a'), Driver: 'vxlan-router', Options: { network: 'blue' }, IPAM: { Config: [{ Subnet: '198.18.0.0/15' }] } },
      { Name: 'vxr-red', Id: id('b'), Driver: 'bridge', Options: { 'com.docker.network.bridge.name': 'br1' }, IPAM: { Config: [{ Subnet: '10.9.0.0/16' }] } },
      { Name: 'bridge', Id: id('c'), Driver: 'bridge', Options: { 'com.docker.network.bridge.name': 'docker0' }, IPAM: { Config: [{ Subnet: '172.17.0.0/16' }] } },
      { Name: 'green', Id: id('d'), Driver: 'vxlan-router', Options: { network: 'green' }, IPAM: { Config: [{ Subnet: '198.20.0.0/16' }] } },
      { Name: 'host', Id: id('e'), Driver: 'host', Options: {}, IPAM: { Config: [] } },
    ],
    [`/networks/${id('a')}`]: {
      Containers: {
        [id('1')]: { Name: 'A1', MacAddress: '02:42:c6:12:1c:02', IPv4Address: '198.18.28.2/15', IPv6Address: '' },
        [id('2')]: { Name: 'proj_web_1', MacAddress: '02:42:c6:12:1c:03', IPv4Address: '198.18.28.3/15', IPv6Address: '' },
        [id('3')]: { Name: 'no mac', MacAddress: '', IPv4Address: '198.18.28.4/15' },
        [id('4')]: { Name: 'bad name!', MacAddress: '02:42:c6:12:1c:05', IPv4Address: '198.18.28.5/15' },
      },
    },
    [`/networks/${id('b')}`]: { Containers: { [id('5')]: { Name: 'db', MacAddress: '02:42:0a:09:01:02', IPv4Address: '10.9.1.2/16', IPv6Address: 'fd00::2/64' } } },
    [`/containers/${id('1')}/json`]: { NetworkSettings: { Networks: { blue: { Aliases: [id('1').slice(0, 12)] } } } },
    [`/containers/${id('2')}/json`]: { NetworkSettings: { Networks: { blue: { Aliases: ['web', id('2').slice(0, 12), 'Bad Alias'] } } } },
    [`/containers/${id('4')}/json`]: { NetworkSettings: { Networks: { blue: { Aliases: null } } } },
    [`/containers/${id('5')}/json`]: { NetworkSettings: { Networks: { 'vxr-red': { Aliases: ['database'] } } } },
  };
  const asked: string[] = [];
  const get: DockerGet = async (path) => {
    asked.push(path);
    if (!(path in dockerd)) throw new Error(`404 ${path}`);
    return dockerd[path];
  };
  t.equal(servedIndexOf(nets, { Name: 'x', Id: 'f', Driver: 'vxlan-router', Options: { vni: '7' }, IPAM: { Config: [{ Subnet: '10.9.0.0/16' }] } }), 1, '-o vni=N');
  const d = new DockerNames(get, nets);
  const first = await d.poll();
  t.same(first, [
    {
      entries: [
        { mac: '02:42:c6:12:1c:02', ips: ['198.18.28.2'], names: ['a1'] },
        { mac: '02:42:c6:12:1c:03', ips: ['198.18.28.3'], names: ['proj_web_1', 'web'] },
      ],
      dockerNetworks: ['blue'],
    },
    { entries: [{ mac: '02:42:0a:09:01:02', ips: ['10.9.1.2', 'fd00::2'], names: ['db', 'database'] }], dockerNetworks: ['vxr-red'] },
  ], 'names lowercased, aliases (compose services) without the short id, containers without a MAC or a usable name left out');
  t.notOk(asked.some((p) => p.includes(id('c')) || p.includes(id('d'))), "networks that are not ours are not asked about");
  asked.length = 0;
  await d.poll();
  t.notOk(asked.some((p) => p.startsWith('/containers/')), 'aliases are asked once per container');
  dockerd[`/networks/${id('a')}`] = { Containers: {} };
  t.same((await d.poll())[0]!.entries, [], 'a removed container leaves');
  dockerd['/networks'] = { message: 'nonsense' };
  await t.rejects(d.poll(), 'an answer of the wrong shape is an error (the caller reports it)');
});

t.test('the server on a real socket (127.0.0.1, an ephemeral port)', async (t) => {
  const errors: Error[] = [];
  const server = await DnsServer.start('127.0.0.1', lookup, (e) => errors.push(e), 0, async () => {
    throw new Error('no upstream in tests');
  });
  t.teardown(() => server.close());
  const sock = createSocket('udp4');
  t.teardown(() => sock.close());
  const ask = (buf: Uint8Array): Promise<Buffer | undefined> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 1000);
      sock.once('message', (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      sock.send(buf, server.port, '127.0.0.1');
    });
  t.same(parseDnsAnswer((await ask(buildDnsQuery(5, 'a2.blue')))!), { id: 5, rcode: 0, addresses: ['198.18.29.2'] });
  t.equal(await ask(new Uint8Array([1, 2, 3])), undefined, 'garbage: no answer');
  t.same(parseDnsAnswer((await ask(buildDnsQuery(6, 'web')))!)?.addresses, ['198.18.28.2'], 'still serving');
  t.equal(server.counters.malformed, 1);
  t.same(errors, []);
});

t.test('forwarding over UDP: an answer relayed by id; a refused or silent upstream is a rejection, never a throw', async (t) => {
  const up = createSocket('udp4');
  t.teardown(() => up.close());
  up.on('message', (m, r) => {
    const a = Buffer.from(m);
    a[2]! |= 0x80;
    up.send(Buffer.from([0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0]), r.port, r.address); // another id first: ignored
    up.send(a, r.port, r.address);
  });
  await new Promise<void>((r) => up.bind(0, '127.0.0.1', () => r()));
  const port = up.address().port;
  const answer = await udpUpstream('127.0.0.1', buildDnsQuery(0x1111, 'example.org'), 1000, port);
  t.equal(answer[0]! * 256 + answer[1]!, 0x1111, "the upstream's answer with the query's id");
  const closed = createSocket('udp4');
  await new Promise<void>((r) => closed.bind(0, '127.0.0.1', () => r()));
  const closedPort = closed.address().port;
  closed.close();
  await t.rejects(udpUpstream('127.0.0.1', buildDnsQuery(1, 'x'), 1000, closedPort), 'nothing listening: rejected (ECONNREFUSED or the timeout)');
  const silent = createSocket('udp4');
  t.teardown(() => silent.close());
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  await t.rejects(udpUpstream('127.0.0.1', buildDnsQuery(1, 'x'), 200, silent.address().port), { message: /did not answer in 200 ms/ });
  await t.rejects(udpUpstream('not-an-address', buildDnsQuery(1, 'x'), 200), 'not an address: rejected');

  const server = await DnsServer.start('127.0.0.1', lookup, () => undefined, 0, (_server, q, ms) => udpUpstream('127.0.0.1', q, ms, port)); // never the machine's resolvers
  t.teardown(() => server.close());
  const r = await server.responder.handle(buildDnsQuery(0x2222, 'example.org'));
  t.equal(r![0]! * 256 + r![1]!, 0x2222, 'the server relays the forwarded answer');
});

t.test("dockerd's API over its unix socket: GETs bounded, events followed and the stream opened again", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-dockerd-api-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'docker.sock');
  const streams: ServerResponse[] = [];
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    if (req.url === '/networks') return void res.end('[]');
    if (req.url === '/broken') return void res.end('{');
    if (req.url === '/missing') return void res.writeHead(404).end('{"message":"no such network"}');
    if (req.url?.startsWith('/events')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('');
      streams.push(res);
    }
  });
  await new Promise<void>((r) => server.listen(socket, () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const get = unixDockerGet(socket, 1000);
  t.same(await get('/networks'), []);
  await t.rejects(get('/broken'), { message: /not JSON/ });
  await t.rejects(get('/missing'), { message: /dockerd answered 404 to GET \/missing: .*no such network/ });
  await t.rejects(unixDockerGet(join(dir, 'nothing.sock'))('/networks'), { code: 'ENOENT' }, 'no dockerd: a rejection');

  let events = 0;
  const errors: Error[] = [];
  const w = watchDockerEvents(socket, () => events++, (e) => errors.push(e), 50);
  t.teardown(() => w.close());
  await waitUntil(() => streams.length === 1);
  t.match(paths.at(-1), /^\/events\?filters=/, 'network events asked for');
  t.match(decodeURIComponent(paths.at(-1)!), /"type":\["network"\],"event":\["connect","disconnect"\]/);
  await waitUntil(() => events === 1);
  t.pass('connecting counts as an event (what happened before is read then)');
  streams[0]!.write('{"Type":"network","Action":"disconnect"}\n');
  await waitUntil(() => events === 2);
  t.pass('an event');
  streams[0]!.end();
  await waitUntil(() => streams.length === 2 && events === 3); // the client sees the new stream after the server does
  t.pass('the stream ended: opened again');
  w.close();
  streams[1]!.write('{"Type":"network","Action":"connect"}\n');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(events, 3, 'closed: nothing more (the reconnect itself was one)');
  t.same(errors, []);
});

async function waitUntil(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A DNS message with its 2-byte length in front. */
const frame = (m: Uint8Array): Buffer => Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]);

/** Connects, writes `bytes`, ends when `end` (else stays silent), and gives back the messages read until the close. */
function tcpTalk(port: number, bytes: Buffer, end = true): Promise<{ messages: Buffer[]; closedAfterMs: number; sock: TcpSocket }> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const reader = new DnsTcpReader();
    const messages: Buffer[] = [];
    const sock = connect({ host: '127.0.0.1', port }, () => (end ? sock.end(bytes) : sock.write(bytes)));
    sock.on('data', (c: Buffer) => {
      reader.push(c);
      for (let m = reader.next(); m !== undefined; m = reader.next()) messages.push(m);
    });
    sock.on('error', () => undefined); // a reset counts as a close here
    sock.on('close', () => resolve({ messages, closedAfterMs: Date.now() - start, sock }));
    setTimeout(() => reject(new Error('the server kept the connection for 15 s')), 15_000).unref();
  });
}

t.test('the TCP reader: messages out of any split of the stream, a length of 0 is broken', async (t) => {
  const msgs = [buildDnsQuery(1, 'a2'), buildDnsQuery(2, 'x'.repeat(63) + '.example'), new Uint8Array(600).fill(7)];
  const stream = Buffer.concat(msgs.map(frame));
  const rnd = mulberry32(7);
  for (let round = 0; round < 50; round++) {
    const r = new DnsTcpReader();
    const out: Buffer[] = [];
    for (let o = 0; o < stream.length; ) {
      const n = round === 0 ? 1 : 1 + Math.floor(rnd() * 200); // round 0: a byte at a time
      r.push(stream.subarray(o, o + n));
      o += n;
      for (let m = r.next(); m !== undefined; m = r.next()) out.push(m);
    }
    if (!out.every((m, i) => Buffer.compare(m, Buffer.from(msgs[i]!)) === 0) || out.length !== 3 || r.partial) return t.fail(`round ${round}`);
  }
  t.pass('50 random splits (one a byte at a time) give the three messages');
  const zero = new DnsTcpReader();
  zero.push(Buffer.from([0, 0, 0, 5]));
  t.equal(zero.next(), undefined);
  t.ok(zero.broken, 'length 0: broken');
});

t.test('over TCP on a real socket: names, several queries per connection, answers whole, TC over UDP', async (t) => {
  const server = await DnsServer.start('127.0.0.1', lookup, (e) => t.error(e), 0, async () => {
    throw new Error('no upstream in tests');
  });
  t.teardown(() => server.close());
  const one = await tcpTalk(server.port, frame(buildDnsQuery(5, 'a2.blue')));
  t.same(one.messages.map((m) => parseDnsAnswer(m)), [{ id: 5, rcode: 0, addresses: ['198.18.29.2'] }], 'a container name over TCP; closed after the client ended');
  const two = await tcpTalk(server.port, Buffer.concat([frame(buildDnsQuery(6, 'web')), frame(buildDnsQuery(7, 'web', QTYPE_AAAA))]));
  t.same(
    two.messages.map((m) => parseDnsAnswer(m)).sort((a, b) => a!.id - b!.id),
    [
      { id: 6, rcode: 0, addresses: ['198.18.28.2'] },
      { id: 7, rcode: 0, addresses: ['fd00:0:0:0:0:0:0:2'] },
    ],
    'two queries on one connection',
  );
  const hundred = await tcpTalk(server.port, Buffer.concat(Array.from({ length: 100 }, (_, i) => frame(buildDnsQuery(1000 + i, 'a2')))));
  t.same(hundred.messages.map((m) => parseDnsAnswer(m)!.id).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => 1000 + i), '100 pipelined queries: 100 answers (read on as answers go out)');

  const sock = createSocket('udp4');
  t.teardown(() => sock.close());
  const udpAnswer = await new Promise<Buffer>((resolve) => {
    sock.once('message', resolve);
    sock.send(buildDnsQuery(8, 'scaled'), server.port, '127.0.0.1');
  });
  const cut = parseDnsAnswer(udpAnswer)!;
  t.ok(udpAnswer.length <= 512 && cut.truncated === true && cut.addresses.length < many.length, `over UDP: ${cut.addresses.length} of ${many.length} addresses in ${udpAnswer.length} bytes, TC set`);
  const whole = await tcpTalk(server.port, frame(buildDnsQuery(9, 'scaled')));
  t.same(parseDnsAnswer(whole.messages[0]!), { id: 9, rcode: 0, addresses: many }, 'over TCP: all of them, no TC');

  const badQuestion = buildDnsQuery(10, 'a2');
  badQuestion[5] = 2;
  const formErr = await tcpTalk(server.port, Buffer.concat([frame(badQuestion), frame(buildDnsQuery(11, 'a2'))]));
  t.same(formErr.messages.map((m) => parseDnsAnswer(m)?.rcode), [RCODE.formErr, RCODE.noError], 'a bad question: FORMERR, and the connection goes on');
  const noHeader = await tcpTalk(server.port, Buffer.concat([frame(new Uint8Array([1, 2, 3])), frame(buildDnsQuery(12, 'a2'))]), false);
  t.equal(noHeader.messages.length, 0, 'a message without a DNS header: closed, nothing more read');
  const zero = await tcpTalk(server.port, Buffer.from([0, 0]), false);
  t.equal(zero.messages.length, 0, 'a message of length 0: closed');
  t.match(server.counters, { tcpQueries: 106, truncated: 1, malformed: 3, tcpRefused: 0, tcpIdleClosed: 0 });
});

t.test('hostile TCP clients: silent, dribbling, too many at once', async (t) => {
  const idleMs = 400;
  const server = await DnsServer.start('127.0.0.1', lookup, (e) => t.error(e), 0, async () => new Uint8Array(0), undefined, idleMs);
  t.teardown(() => server.close());
  const silent = await tcpTalk(server.port, Buffer.from([0x10, 0x00, 1, 2, 3]), false); // announces 4096 bytes, sends 3
  t.ok(silent.closedAfterMs >= idleMs * 0.9 && silent.closedAfterMs < idleMs + 5000, `a length larger than what follows, then silence: closed after ${silent.closedAfterMs} ms (idle ${idleMs})`);

  const start = Date.now();
  const dribbler = connect({ host: '127.0.0.1', port: server.port });
  dribbler.on('error', () => undefined);
  const query = frame(buildDnsQuery(1, 'a2'));
  let sent = 0;
  const drip = setInterval(() => dribbler.write(query.subarray(sent % query.length, (sent++ % query.length) + 1)), idleMs / 4);
  await new Promise((r) => dribbler.once('close', r));
  clearInterval(drip);
  t.ok(Date.now() - start < idleMs + 5000, `a byte every ${idleMs / 4} ms never makes a query: closed after ${Date.now() - start} ms`);
  t.equal(server.counters.tcpIdleClosed, 2);

  const held: TcpSocket[] = [];
  t.teardown(() => held.forEach((s) => s.destroy()));
  for (let i = 0; i < MAX_TCP_CONNECTIONS; i++) {
    const s = connect({ host: '127.0.0.1', port: server.port });
    s.on('error', () => undefined);
    await new Promise((r) => s.once('connect', r));
    held.push(s);
  }
  const refused = await tcpTalk(server.port, frame(buildDnsQuery(2, 'a2')), false);
  t.equal(refused.messages.length, 0, `connection ${MAX_TCP_CONNECTIONS + 1}: closed at once`);
  t.ok(refused.closedAfterMs < idleMs, `closed after ${refused.closedAfterMs} ms, not by the idle timeout`);
  t.equal(server.counters.tcpRefused, 1);
  const reader = new DnsTcpReader();
  held[0]!.on('data', (c: Buffer) => reader.push(c));
  held[0]!.write(frame(buildDnsQuery(3, 'a2')));
  await waitUntil(() => {
    const m = reader.next();
    return m !== undefined && parseDnsAnswer(m)?.id === 3;
  });
  t.pass('the connections held are still answered');
  held.forEach((s) => s.destroy());
  // A new client is served again once the server has seen the held ones close (until then it may be refused).
  let again: Buffer[] = [];
  for (let i = 0; i < 50 && again.length === 0; i++) {
    again = (await tcpTalk(server.port, frame(buildDnsQuery(4, 'a2')))).messages;
    if (again.length === 0) await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(parseDnsAnswer(again[0]!)?.id, 4, 'once they close, new connections are served');

  // A client that sends 20000 queries (~20 MB of answers) and does not read: the server stops reading it once the
  // kernel's buffers and its own bounded queue are full, and goes on when the client reads.
  const n = 20_000;
  const reader2 = new DnsTcpReader();
  let answers = 0;
  const before = server.counters.tcpQueries;
  const hog = connect({ host: '127.0.0.1', port: server.port }, () => hog.write(Buffer.concat(Array.from({ length: n }, () => frame(buildDnsQuery(5, 'scaled'))))));
  hog.on('error', () => undefined);
  hog.pause();
  let last = -1;
  for (let stable = 0; stable < 3; ) {
    await new Promise((r) => setTimeout(r, 100));
    stable = server.counters.tcpQueries === last ? stable + 1 : 0;
    last = server.counters.tcpQueries;
  }
  t.ok(last - before < n, `not reading: the server stopped at ${last - before} of ${n} queries`);
  hog.on('data', (c: Buffer) => {
    reader2.push(c);
    while (reader2.next() !== undefined) answers++;
  });
  hog.resume();
  await waitUntil(() => answers === n, 20_000);
  t.pass(`reading again: all ${n} answered`);
  hog.destroy();
});

t.test('a forwarded answer truncated over UDP comes back whole over TCP (a fake upstream on loopback)', async (t) => {
  const big = Array.from({ length: 100 }, (_, i) => ({ address: parseIp(`10.1.${i >> 8}.${i & 0xff}`), ttl: 60 }));
  const answerTo = (q: Uint8Array, max: number): Uint8Array => buildDnsAnswer(parseDnsQuery(q), RCODE.noError, big, false, max);
  const udp = createSocket('udp4');
  t.teardown(() => udp.close());
  udp.on('message', (m, r) => udp.send(answerTo(m, 512), r.port, r.address)); // TC set: 100 records do not fit
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  let tcpAsked = 0;
  const tcp = createTcpServer((c) => {
    const reader = new DnsTcpReader();
    c.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      for (let m = reader.next(); m !== undefined; m = reader.next()) {
        tcpAsked++;
        c.write(frame(answerTo(m, DNS_TCP_MAX)));
      }
    });
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => tcp.close(() => r())));
  const udpPort = udp.address().port;
  const tcpPort = (tcp.address() as { port: number }).port;
  const server = await DnsServer.start('127.0.0.1', lookup, (e) => t.error(e), 0, {
    udp: (_s, q, ms) => udpUpstream('127.0.0.1', q, ms, udpPort),
    tcp: (_s, q, ms) => tcpUpstream('127.0.0.1', q, ms, tcpPort),
  }); // never the machine's resolvers
  t.teardown(() => server.close());
  const viaUdp = parseDnsAnswer((await server.responder.handle(buildDnsQuery(0x3333, 'big.example')))!)!;
  t.ok(viaUdp.truncated === true && viaUdp.addresses.length < 100, `asked over UDP: relayed as is, TC set (${viaUdp.addresses.length} records)`);
  t.equal(tcpAsked, 0, 'the upstream was not asked over TCP');
  const viaTcp = await tcpTalk(server.port, frame(buildDnsQuery(0x4444, 'big.example')));
  const whole = parseDnsAnswer(viaTcp.messages[0]!)!;
  t.same([whole.id, whole.addresses.length, whole.truncated], [0x4444, 100, undefined], 'asked over TCP: forwarded over TCP, all 100 records');
  t.ok(viaTcp.messages[0]!.length > 512, `${viaTcp.messages[0]!.length} bytes`);
  t.equal(tcpAsked, 1);
  t.match(server.counters, { forwarded: 2, forwardFailed: 0, tcpQueries: 1 });

  const gone = createTcpServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', () => r()));
  const gonePort = (gone.address() as { port: number }).port;
  await new Promise<void>((r) => gone.close(() => r()));
  await t.rejects(tcpUpstream('127.0.0.1', buildDnsQuery(1, 'x'), 1000, gonePort), 'nothing listening over TCP: rejected');
  const mute = createTcpServer((c) => c.resume()); // reads (so it sees the client's close), never answers
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
  const mutePort = (mute.address() as { port: number }).port;
  await t.rejects(tcpUpstream('127.0.0.1', buildDnsQuery(1, 'x'), 200, mutePort), { message: /did not answer over TCP in 200 ms/ });
  await new Promise<void>((r) => mute.close(() => r()));
  await t.rejects(tcpUpstream('not-an-address', buildDnsQuery(1, 'x'), 200), { message: /not an address/ });
});
