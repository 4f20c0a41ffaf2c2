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
 * Bad input never crashes it: a datagram that is not a query is counted (`malformed`) and dropped, or answered
 * FORMERR when it has an id; forwards in flight are bounded (MAX_FORWARDS; more are answered SERVFAIL and counted).
 * UDP only: answers fit 512 bytes (Docker's resolver asks over UDP; a forwarded truncated answer is relayed as is).
 */
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { isIP, isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { promisify } from 'node:util';
import { ConfigError } from '../errors.js';
import { buildDnsAnswer, buildDnsError, DnsQueryError, dnsResponseId, parseDnsQuery, parseIp, QCLASS_IN, QTYPE_A, QTYPE_AAAA, RCODE, type DnsQuery } from '../packet/index.js';

const run = promisify(execFile);

/** The default address (DEFAULT_DNS_ADDRESS): link-local, the same on every host, clear of clouds' 169.254.169.x. */
export { DEFAULT_DNS_ADDRESS } from './control-protocol.js';
/** Forwarded queries waiting for an upstream answer at once; more are answered SERVFAIL (counted `busy`). */
export const MAX_FORWARDS = 256;
/** How long one upstream server gets to answer before the next is asked. */
export const FORWARD_TIMEOUT_MS = 2000;
/** Upstream servers taken from resolv.conf (as the C library does). */
const MAX_UPSTREAMS = 3;
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
}

/**
 * Which addresses a name has, or undefined when the name is none of the overlay's containers (then it is forwarded).
 * `name` is lowercase without the trailing dot.
 */
export type NameLookup = (name: string) => readonly string[] | undefined;

/** Sends a query to one upstream server and resolves with its answer (or rejects: timeout, unreachable). */
export type Upstream = (server: string, query: Uint8Array, timeoutMs: number, port?: number) => Promise<Uint8Array>;

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

/** Answers queries (`handle`): the part of the server without sockets, tested on its own. */
export class DnsResponder {
  readonly counters: DnsCounters = { queries: 0, answered: 0, forwarded: 0, forwardFailed: 0, malformed: 0, busy: 0 };
  private inFlight = 0;

  constructor(
    private readonly lookup: NameLookup,
    private readonly upstreams: () => readonly string[],
    private readonly upstream: Upstream = udpUpstream,
    private readonly timeoutMs = FORWARD_TIMEOUT_MS,
  ) {}

  /** The answer to a datagram, or undefined when it gets none (not a query; counted). Never throws. */
  async handle(msg: Uint8Array): Promise<Uint8Array | undefined> {
    let q: DnsQuery;
    try {
      q = parseDnsQuery(msg);
    } catch (err) {
      this.counters.malformed++;
      return err instanceof DnsQueryError && err.id !== undefined ? buildDnsError(err.id, RCODE.formErr) : undefined;
    }
    this.counters.queries++;
    if (q.opcode !== 0) {
      this.counters.malformed++;
      return buildDnsAnswer(q, RCODE.notImp, [], false);
    }
    const found = q.qclass === QCLASS_IN ? this.lookup(q.name) : undefined;
    if (found !== undefined) {
      this.counters.answered++;
      const family = q.qtype === QTYPE_A ? 4 : q.qtype === QTYPE_AAAA ? 6 : 0;
      const addresses = found.filter((a) => isIP(a) === family).map((a) => ({ address: parseIp(a), ttl: ANSWER_TTL }));
      return buildDnsAnswer(q, RCODE.noError, addresses); // no address of that family: NODATA, so no one waits
    }
    return this.forward(q, msg);
  }

  private async forward(q: DnsQuery, msg: Uint8Array): Promise<Uint8Array> {
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
          return await this.upstream(s, msg, this.timeoutMs);
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

/** The server on `address`:`port` (UDP), with the address put on the loopback first when it is not on the host. */
export class DnsServer {
  private constructor(
    private readonly socket: Socket,
    readonly responder: DnsResponder,
    private added: string | undefined,
  ) {}

  /**
   * `inherited`: the address (with prefix) a router that handed over to this one put on lo and left there for it;
   * this server then removes it at its stop, as if it had added it.
   */
  static async start(address: string, lookup: NameLookup, onError: (err: Error) => void, port = 53, upstream?: Upstream, inherited?: string): Promise<DnsServer> {
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
    const socket = createSocket({ type: isIPv4(address) ? 'udp4' : 'udp6', reuseAddr: false });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, address, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      if (added !== undefined) await run('ip', ['addr', 'del', added, 'dev', 'lo']).catch(() => undefined);
      throw new ConfigError(`--dns ${address}: cannot serve DNS on ${address}:${port}: ${(err as Error).message}`, { hint: 'another name server holds that address and port: give another --dns address' });
    }
    socket.on('error', onError);
    socket.on('message', (msg, rinfo) => {
      responder
        .handle(new Uint8Array(msg))
        .then((answer) => {
          if (answer !== undefined) socket.send(answer, rinfo.port, rinfo.address, (err) => err && onError(err));
        })
        .catch((err: unknown) => onError(err instanceof Error ? err : new Error(String(err)))); // a send after close
    });
    return new DnsServer(socket, responder, added);
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

  /** The UDP port it answers on (the one given, or the kernel's pick for 0). */
  get port(): number {
    return this.socket.address().port;
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.socket.close(() => r()));
    if (this.added !== undefined) await run('ip', ['addr', 'del', this.added, 'dev', 'lo'], { timeout: 10_000 }).catch(() => undefined);
  }
}
