/**
 * `up --dns [address]`: a small name server for containers (issue 16, names across hosts). Containers ask it through
 * Docker's embedded DNS (127.0.0.11), which answers its own host's names and forwards the rest to the container's
 * external servers (`docker run --dns 169.254.53.53`, `dns:` in compose, or `"dns"` in daemon.json): this server
 * answers container names of every host of the overlay (`name` and `name.<network>`) and forwards every other name
 * to the host's own resolvers (/etc/resolv.conf), so external names keep working.
 *
 * The address is a link-local /32 on the host's loopback (added at start, removed at stop if this router added it):
 * the same on every host, outside every overlay, reached by containers through their default route (docker_gwbridge
 * or the bridge's gateway), so one line of set-up fits every host and nothing of it crosses the overlay.
 *
 * UDP and TCP on the same address and port (RFC 1035 §4.2.2, RFC 7766). Over UDP our answers fit 512 bytes: when
 * a name has more addresses than fit, TC is set, and a forwarded truncated answer is relayed as is; the client
 * (Docker's resolver, then the container's libc) then asks again over TCP, where our answers are whole and forwards
 * go to the upstream over TCP too, so large external answers come back whole.
 *
 * Bad input never crashes it: a message that is not a query is counted (`malformed`) and dropped, or answered
 * FORMERR when it has an id; forwards in flight are bounded (MAX_FORWARDS; more are answered SERVFAIL and counted).
 * TCP is bounded too: MAX_TCP_CONNECTIONS at once (more are closed at once, `tcpRefused`), a connection without a
 * whole query or an answer for TCP_IDLE_MS is closed (`tcpIdleClosed`: a client that dribbles bytes is idle), a
 * message is at most 65535 bytes (its 2-byte length) read into one buffer of that length, and a connection reads no
 * further while TCP_PIPELINE of its queries wait or its unsent answers pass TCP_WRITE_BUFFERED (a client that does
 * not read is held back by TCP's own flow control, never by our memory).
 */
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { connect as tcpConnect, createServer as createTcpServer, type Server as TcpServer, type Socket as TcpSocket } from 'node:net';
import { readFileSync } from 'node:fs';
import { isIP, isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { promisify } from 'node:util';
import { ConfigError } from '../errors.js';
import { buildDnsAnswer, buildDnsError, DNS_TCP_MAX, DNS_UDP_MAX, DnsQueryError, dnsResponseId, parseDnsQuery, parseIp, QCLASS_IN, QTYPE_A, QTYPE_AAAA, RCODE, type DnsQuery } from '../packet/index.js';

const run = promisify(execFile);

/** The default address (DEFAULT_DNS_ADDRESS): link-local, the same on every host, clear of clouds' 169.254.169.x. */
export { DEFAULT_DNS_ADDRESS } from './control-protocol.js';
/** Forwarded queries waiting for an upstream answer at once; more are answered SERVFAIL (counted `busy`). */
export const MAX_FORWARDS = 256;
/** How long one upstream server gets to answer before the next is asked. */
export const FORWARD_TIMEOUT_MS = 2000;
/** Upstream servers taken from resolv.conf (as the C library does). */
const MAX_UPSTREAMS = 3;
/** TCP connections open at once; more are closed as they come (counted `tcpRefused`). */
export const MAX_TCP_CONNECTIONS = 64;
/** A TCP connection with no whole query and no answer for this long is closed (RFC 7766 §6.2.3: seconds). */
export const TCP_IDLE_MS = 10_000;
/** Queries of one TCP connection answered at once (RFC 7766 pipelining); it is not read further meanwhile. */
export const TCP_PIPELINE = 16;
/** Unsent answer bytes of one TCP connection past which it is not read further (a client that does not read). */
export const TCP_WRITE_BUFFERED = 128 * 1024;
/** TTL of our answers: 0, so a removed container's name is gone at the next query. */
const ANSWER_TTL = 0;

export interface DnsCounters {
  queries: number;
  /** Answered from the container names (found). */
  answered: number;
  forwarded: number;
  /** Forwards no upstream answered (SERVFAIL sent), or no upstream configured. */
  forwardFailed: number;
  /** Datagrams that were not a query this server takes (dropped, or FORMERR / NOTIMP). */
  malformed: number;
  /** Forwards refused because MAX_FORWARDS were in flight. */
  busy: number;
  /** Queries that came over TCP (also in `queries`). */
  tcpQueries: number;
  /** TCP connections closed at once: MAX_TCP_CONNECTIONS were open. */
  tcpRefused: number;
  /** TCP connections closed after TCP_IDLE_MS without a whole query or an answer (a silent or dribbling client). */
  tcpIdleClosed: number;
  /** Our own UDP answers that did not fit 512 bytes: sent with TC set (the client asks again over TCP). */
  truncated: number;
}

/** How a query came: over TCP, answers may be 65535 bytes and forwards go over TCP. */
export type DnsTransport = 'udp' | 'tcp';

/**
 * Which addresses a name has, or undefined when the name is none of the overlay's containers (then it is forwarded).
 * `name` is lowercase without the trailing dot.
 */
export type NameLookup = (name: string) => readonly string[] | undefined;

/** Sends a query to one upstream server and resolves with its answer (or rejects: timeout, unreachable). */
export type Upstream = (server: string, query: Uint8Array, timeoutMs: number, port?: number) => Promise<Uint8Array>;

/** How forwards go out: over UDP, and over TCP for queries that came over TCP. */
export interface Upstreams {
  readonly udp: Upstream;
  readonly tcp: Upstream;
}

/** The nameservers of a resolv.conf text, without `self` (no loops), at most MAX_UPSTREAMS. */
export function upstreamsOf(resolvConf: string, self: string): string[] {
  const out: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const addr = m?.[1]?.split('%')[0];
    if (addr !== undefined && isIP(addr) !== 0 && addr !== self && !out.includes(addr)) out.push(addr);
  }
  return out.slice(0, MAX_UPSTREAMS);
}

/**
 * One query to `server` on a socket of its own (a fresh random port per query), its answer matched by id. Every
 * failure (no route, refused, timeout) is a rejection: an error in a socket callback would otherwise end the process.
 */
export const udpUpstream: Upstream = (server, query, timeoutMs, port = 53) =>
  new Promise((resolve, reject) => {
    const sock = createSocket(isIPv4(server) ? 'udp4' : 'udp6');
    const id = (query[0]! << 8) | query[1]!;
    let finished = false;
    const done = (err?: Error, answer?: Uint8Array): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        /* never bound */
      }
      if (answer !== undefined) resolve(answer);
      else reject(err ?? new Error('no answer'));
    };
    const timer = setTimeout(() => done(new Error(`${server} did not answer in ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', (err) => done(err));
    sock.on('message', (msg) => {
      if (dnsResponseId(msg) === id) done(undefined, new Uint8Array(msg));
    });
    try {
      sock.connect(port, server, (err?: Error) => {
        if (err) return done(err);
        try {
          sock.send(query, (e) => e && done(e));
        } catch (e) {
          done(e as Error);
        }
      });
    } catch (err) {
      done(err as Error);
    }
  });

/**
 * One query to `server` over TCP (a connection of its own): the 2-byte length, the query, then the answer read the
 * same way (at most 65535 bytes, into one buffer) and matched by id. Every failure is a rejection, as for UDP.
 */
export const tcpUpstream: Upstream = (server, query, timeoutMs, port = 53) =>
  new Promise((resolve, reject) => {
    const id = (query[0]! << 8) | query[1]!;
    let finished = false;
    const reader = new DnsTcpReader();
    let sock: TcpSocket | undefined;
    const done = (err?: Error, answer?: Uint8Array): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock?.destroy();
      if (answer !== undefined) resolve(answer);
      else reject(err ?? new Error('no answer'));
    };
    const timer = setTimeout(() => done(new Error(`${server} did not answer over TCP in ${timeoutMs} ms`)), timeoutMs);
    if (query.length > DNS_TCP_MAX) return done(new Error(`a query of ${query.length} bytes does not fit a TCP message`));
    if (isIP(server) === 0) return done(new Error(`${server} is not an address`)); // never a name lookup of its own
    try {
      sock = tcpConnect({ host: server, port });
    } catch (err) {
      return done(err as Error);
    }
    sock.setNoDelay(true);
    sock.on('error', (err) => done(err));
    sock.on('close', () => done(new Error(`${server} closed the TCP connection without an answer`)));
    sock.on('connect', () => sock?.write(framed(query)));
    sock.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      for (let m = reader.next(); m !== undefined; m = reader.next()) {
        if (dnsResponseId(m) === id) return done(undefined, new Uint8Array(m));
      }
      if (reader.broken) done(new Error(`${server} sent a TCP message of length 0`));
    });
  });

/** A message with its 2-byte length in front (`msg` is at most DNS_TCP_MAX bytes). */
function framed(msg: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(2 + msg.length);
  out.writeUInt16BE(msg.length, 0);
  out.set(msg, 2);
  return out;
}

/**
 * DNS messages out of a TCP byte stream: chunks are kept as they come (no copy) until taken; a message is copied
 * once into a buffer of its announced length (≤ 65535), so a client that sends a byte at a time costs no more than
 * one that sends it whole. `broken`: a message of length 0 (no DNS message is; the stream cannot be trusted after).
 */
export class DnsTcpReader {
  private chunks: Buffer[] = [];
  private offset = 0;
  private lenHave = 0;
  private lenBytes = Buffer.alloc(2);
  private msg: Buffer | undefined;
  private msgHave = 0;
  broken = false;

  push(chunk: Buffer): void {
    if (chunk.length > 0) this.chunks.push(chunk);
  }

  /** Bytes received and not yet taken into a message. */
  get pending(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0) - this.offset;
  }

  /** True while a message has begun (some of its bytes or its length read) but is not whole. */
  get partial(): boolean {
    return this.lenHave > 0 || this.pending > 0;
  }

  /** The next whole message, or undefined until more bytes come. */
  next(): Buffer | undefined {
    while (!this.broken && this.chunks.length > 0) {
      const c = this.chunks[0]!;
      if (this.msg === undefined) {
        this.lenBytes[this.lenHave++] = c[this.offset++]!;
        if (this.lenHave === 2) {
          const len = this.lenBytes.readUInt16BE(0);
          if (len === 0) this.broken = true;
          else this.msg = Buffer.allocUnsafe(len);
          this.msgHave = 0;
        }
      } else {
        const n = Math.min(this.msg.length - this.msgHave, c.length - this.offset);
        c.copy(this.msg, this.msgHave, this.offset, this.offset + n);
        this.msgHave += n;
        this.offset += n;
      }
      if (this.offset === c.length) {
        this.chunks.shift();
        this.offset = 0;
      }
      if (this.msg !== undefined && this.msgHave === this.msg.length) {
        const m = this.msg;
        this.msg = undefined;
        this.lenHave = 0;
        return m;
      }
    }
    return undefined;
  }
}

/** Answers queries (`handle`): the part of the server without sockets, tested on its own. */
export class DnsResponder {
  readonly counters: DnsCounters = { queries: 0, answered: 0, forwarded: 0, forwardFailed: 0, malformed: 0, busy: 0, tcpQueries: 0, tcpRefused: 0, tcpIdleClosed: 0, truncated: 0 };
  private inFlight = 0;
  private readonly upstream: Upstreams;

  /** `upstream`: one function for both transports (tests), or one for each; by default UDP and TCP to port 53. */
  constructor(
    private readonly lookup: NameLookup,
    private readonly upstreams: () => readonly string[],
    upstream: Upstream | Upstreams = { udp: udpUpstream, tcp: tcpUpstream },
    private readonly timeoutMs = FORWARD_TIMEOUT_MS,
  ) {
    this.upstream = typeof upstream === 'function' ? { udp: upstream, tcp: upstream } : upstream;
  }

  /**
   * The answer to a message (a datagram, or one message of a TCP connection: `transport`), or undefined when it gets
   * none (not a query; counted). Never throws.
   */
  async handle(msg: Uint8Array, transport: DnsTransport = 'udp'): Promise<Uint8Array | undefined> {
    let q: DnsQuery;
    try {
      q = parseDnsQuery(msg);
    } catch (err) {
      this.counters.malformed++;
      return err instanceof DnsQueryError && err.id !== undefined ? buildDnsError(err.id, RCODE.formErr) : undefined;
    }
    this.counters.queries++;
    if (transport === 'tcp') this.counters.tcpQueries++;
    if (q.opcode !== 0) {
      this.counters.malformed++;
      return buildDnsAnswer(q, RCODE.notImp, [], false);
    }
    const found = q.qclass === QCLASS_IN ? this.lookup(q.name) : undefined;
    if (found !== undefined) {
      this.counters.answered++;
      const family = q.qtype === QTYPE_A ? 4 : q.qtype === QTYPE_AAAA ? 6 : 0;
      const addresses = found.filter((a) => isIP(a) === family).map((a) => ({ address: parseIp(a), ttl: ANSWER_TTL }));
      // No address of that family: NODATA, so no one waits. More than fit 512 bytes over UDP: TC, asked again over TCP.
      const out = buildDnsAnswer(q, RCODE.noError, addresses, true, transport === 'tcp' ? DNS_TCP_MAX : DNS_UDP_MAX);
      if ((out[2]! & 0x02) !== 0) this.counters.truncated++;
      return out;
    }
    return this.forward(q, msg, transport);
  }

  private async forward(q: DnsQuery, msg: Uint8Array, transport: DnsTransport): Promise<Uint8Array> {
    const servers = this.upstreams();
    if (servers.length === 0) {
      this.counters.forwardFailed++;
      return buildDnsAnswer(q, RCODE.refused, [], false);
    }
    if (this.inFlight >= MAX_FORWARDS) {
      this.counters.busy++;
      return buildDnsAnswer(q, RCODE.servFail, [], false);
    }
    this.inFlight++;
    this.counters.forwarded++;
    try {
      for (const s of servers) {
        try {
          return await this.upstream[transport](s, msg, this.timeoutMs);
        } catch {
          /* the next one */
        }
      }
      this.counters.forwardFailed++;
      return buildDnsAnswer(q, RCODE.servFail, [], false);
    } finally {
      this.inFlight--;
    }
  }
}

/** The server on `address`:`port` (UDP and TCP), with the address put on the loopback first when it is not on the host. */
export class DnsServer {
  private constructor(
    private readonly socket: Socket,
    private readonly tcp: TcpServer,
    private readonly connections: Set<TcpSocket>,
    readonly responder: DnsResponder,
    private added: string | undefined,
  ) {}

  /**
   * `inherited`: the address (with prefix) a router that handed over to this one put on lo and left there for it;
   * this server then removes it at its stop, as if it had added it. `upstream`: where forwards go (tests: a fake on
   * loopback; one function serves both transports); `tcpIdleMs`: TCP_IDLE_MS but in tests.
   */
  static async start(address: string, lookup: NameLookup, onError: (err: Error) => void, port = 53, upstream?: Upstream | Upstreams, inherited?: string, tcpIdleMs = TCP_IDLE_MS): Promise<DnsServer> {
    let added: string | undefined;
    const prefix = isIPv4(address) ? 32 : 128;
    const local = Object.values(networkInterfaces()).some((list) => list?.some((a) => a.address === address));
    if (local && inherited === `${address}/${prefix}`) added = inherited;
    if (!local) {
      try {
        await run('ip', ['addr', 'add', `${address}/${prefix}`, 'dev', 'lo'], { timeout: 10_000 });
        added = `${address}/${prefix}`;
      } catch (err) {
        const stderr = (err as { stderr?: string }).stderr ?? '';
        if (!/File exists/.test(stderr)) throw new ConfigError(`--dns ${address}: cannot put the address on lo: ${stderr.trim() || (err as Error).message}`, { hint: 'run as root, or give another --dns address' });
      }
    }
    let upstreams: { at: number; list: string[] } = { at: 0, list: [] };
    const currentUpstreams = (): string[] => {
      // resolv.conf read again at most every 5 s: a host that changes resolvers is followed without a restart.
      if (Date.now() - upstreams.at > 5000) {
        let text = '';
        try {
          text = readFileSync('/etc/resolv.conf', 'utf8');
        } catch {
          /* none: names that are not ours are refused */
        }
        upstreams = { at: Date.now(), list: upstreamsOf(text, address) };
      }
      return upstreams.list;
    };
    const responder = new DnsResponder(lookup, currentUpstreams, upstream);
    const connections = new Set<TcpSocket>();
    const tcp = createTcpServer({ allowHalfOpen: true, noDelay: true }, (conn) => serveTcp(conn, responder, connections, tcpIdleMs));
    let socket: Socket | undefined;
    try {
      // Port 0 (tests): the kernel picks the UDP port, and TCP takes the same one; another process may hold it for
      // TCP, so a few tries.
      for (let attempt = 0; ; attempt++) {
        const udp = createSocket({ type: isIPv4(address) ? 'udp4' : 'udp6', reuseAddr: false });
        await listen((ok, fail) => {
          udp.once('error', fail);
          udp.bind(port, address, () => {
            udp.off('error', fail);
            ok();
          });
        }).catch((err: unknown) => {
          udp.close();
          throw err;
        });
        socket = udp;
        try {
          await listen((ok, fail) => {
            tcp.once('error', fail);
            tcp.listen({ port: udp.address().port, host: address, exclusive: true }, () => {
              tcp.off('error', fail);
              ok();
            });
          });
          break;
        } catch (err) {
          udp.close();
          socket = undefined;
          if (port !== 0 || attempt >= 4) throw err;
        }
      }
    } catch (err) {
      if (added !== undefined) await run('ip', ['addr', 'del', added, 'dev', 'lo']).catch(() => undefined);
      throw new ConfigError(`--dns ${address}: cannot serve DNS on ${address}:${port}: ${(err as Error).message}`, { hint: 'another name server holds that address and port (UDP or TCP): give another --dns address' });
    }
    socket.on('error', onError);
    tcp.on('error', onError);
    socket.on('message', (msg, rinfo) => {
      responder
        .handle(new Uint8Array(msg))
        .then((answer) => {
          if (answer !== undefined) socket.send(answer, rinfo.port, rinfo.address, (err) => err && onError(err));
        })
        .catch((err: unknown) => onError(err instanceof Error ? err : new Error(String(err)))); // a send after close
    });
    return new DnsServer(socket, tcp, connections, responder, added);
  }

  get counters(): DnsCounters {
    return this.responder.counters;
  }

  /** The address this server put on lo (and removes at its stop), if it did. */
  get addedAddress(): string | undefined {
    return this.added;
  }

  /** A handover: the address stays on lo at this server's stop, for the router that takes over (no gap in routing). */
  keepAddress(): void {
    this.added = undefined;
  }

  /** The port it answers on, UDP and TCP (the one given, or the kernel's pick for 0). */
  get port(): number {
    return this.socket.address().port;
  }

  async close(): Promise<void> {
    const tcpClosed = new Promise<void>((r) => this.tcp.close(() => r()));
    for (const c of this.connections) c.destroy();
    await Promise.all([new Promise<void>((r) => this.socket.close(() => r())), tcpClosed]);
    if (this.added !== undefined) await run('ip', ['addr', 'del', this.added, 'dev', 'lo'], { timeout: 10_000 }).catch(() => undefined);
  }
}

function listen(start: (ok: () => void, fail: (err: Error) => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => start(resolve, reject));
}

/**
 * One TCP client: its messages read in turn (at most TCP_PIPELINE answered at once, answers sent as they are ready,
 * each with its id, as RFC 7766 allows), closed when idle, on a message of length 0 or one without a DNS header,
 * and after the client's end once its answers are sent. Never throws: errors (a reset) just close it.
 */
function serveTcp(conn: TcpSocket, responder: DnsResponder, connections: Set<TcpSocket>, idleMs: number): void {
  if (connections.size >= MAX_TCP_CONNECTIONS) {
    responder.counters.tcpRefused++;
    conn.destroy();
    return;
  }
  connections.add(conn);
  const reader = new DnsTcpReader();
  let waiting = 0;
  let ended = false;
  let idle: NodeJS.Timeout | undefined;
  const close = (): void => {
    clearTimeout(idle);
    conn.destroy();
  };
  const armIdle = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      if (waiting > 0) return armIdle(); // answers on their way (forwards end within their timeouts)
      responder.counters.tcpIdleClosed++;
      close();
    }, idleMs);
  };
  const pump = (): void => {
    while (!conn.destroyed && waiting < TCP_PIPELINE && conn.writableLength <= TCP_WRITE_BUFFERED) {
      const msg = reader.next();
      if (msg === undefined) break;
      armIdle();
      waiting++;
      void responder
        .handle(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), 'tcp')
        .then((answer) => {
          waiting--;
          if (conn.destroyed) return;
          if (answer === undefined) return close(); // not even a header: the stream cannot be trusted
          conn.write(framed(answer));
          armIdle();
          pump();
        })
        .catch(close);
    }
    if (reader.broken) {
      responder.counters.malformed++;
      return close();
    }
    if (conn.destroyed) return;
    if (waiting < TCP_PIPELINE && conn.writableLength <= TCP_WRITE_BUFFERED) conn.resume();
    else conn.pause();
    if (ended && waiting === 0) {
      if (reader.partial) close(); // the rest of that message can no longer come
      else conn.end();
    }
  };
  conn.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    pump();
  });
  conn.on('drain', pump);
  conn.on('end', () => {
    ended = true;
    pump();
  });
  conn.on('error', close); // a reset: nothing to report
  conn.on('close', () => {
    clearTimeout(idle);
    connections.delete(conn);
  });
  armIdle();
}
