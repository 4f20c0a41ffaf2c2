/**
 * Names across hosts, the agent's side (issue 16): the name server's answers (container names from every host, A /
 * AAAA / NODATA, everything else forwarded to the host's resolvers, bounded), malformed datagrams counted and never
 * a crash; which Docker networks are ours and what names their containers have (dockerd's answers as 20.10 gives
 * them); `name` and `name.<network>`. Then the server for real on 127.0.0.1 (an ephemeral port).
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { ServedNetwork } from '../../src/agent/daemon.js';
import { DockerNames, resolveName, servedIndexOf, unixDockerGet, watchDockerEvents, type DockerGet } from '../../src/agent/docker-names.js';
import { DnsResponder, DnsServer, MAX_FORWARDS, udpUpstream, upstreamsOf, type Upstream } from '../../src/agent/dns-server.js';
import { buildDnsQuery, parseDnsAnswer, QTYPE_A, QTYPE_AAAA } from '../../src/packet/index.js';
import { mulberry32 } from '../helpers/prng.js';

const names: Record<string, string[]> = { a2: ['198.18.29.2'], 'a2.blue': ['198.18.29.2'], web: ['198.18.28.2', 'fd00::2'] };
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
  await waitUntil(() => streams.length === 2);
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
