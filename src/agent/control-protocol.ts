/**
 * The local control socket's protocol, shared by the router (control-socket.ts) and the CLI (cli/control-client.ts):
 * frames of a 4-byte big-endian length and a msgpackr body; one request, one response per connection. Every body is
 * checked against its schema on arrival, so a mismatched CLI and router fail with a message instead of misreading.
 */
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { NO_RANGE_REASONS } from '../control/index.js';
import { tableSchema } from '../fdb/index.js';

export { MAX_VNI } from '../packet/index.js';

export const PROTOCOL_VERSION = 1;
/** Far above any answer (a 100 000-entry fdb is a few MB); a length beyond it means a stream that is not ours. */
export const MAX_FRAME = 64 * 1024 * 1024;
/** A request is a version and a method name: tens of bytes. The router reads no more than this from a client. */
export const MAX_REQUEST = 4096;
/** Where routers put their sockets by default: `<dir>/<tap>.sock`. */
/** Name and version, as `--version`, `status` and the registry's host records give it. */
export const VERSION = '0.1.0';
export const SOFTWARE = `vxlan-router ${VERSION}`;
/**
 * Node flags the router runs with (config/vxlan-router.service, the Dockerfile's wrapper, dist/cli.js's #! line, the
 * lab), pinned by test/config/node-flags.test.ts. A V8 young generation of 1 MiB per semi-space: by default V8 grows
 * it (to 16 MiB per semi-space, about 30 MiB resident) a step at a time as long as anything survives scavenges, so a
 * router under load and churn gained RSS for many minutes; the router allocates a few hundred KiB/s at most, which
 * a 1 MiB nursery takes in a scavenge of well under a millisecond every few seconds.
 */
export const NODE_FLAGS = ['--max-semi-space-size=1'] as const;
/** dockerd's API socket (`docker-network create --docker-socket`). */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
/** Where `up --dns` serves container names when no address is given (agent/dns-server.ts says why this one). */
export const DEFAULT_DNS_ADDRESS = '169.254.53.53';
/** Where dockerd looks for plugins' sockets (`up --docker-plugin` with no path). */
export const DEFAULT_PLUGIN_SOCKET = '/run/docker/plugins/vxlan-router.sock';

/**
 * status: the router at a glance; fdb: the forwarding table with origins and ages; peers: remote VTEPs; counters:
 * every data-path counter by name; table: what the control planes handed the data path (peers, MACs, neighbours);
 * why: what happens to frames to a MAC or address (`target`, optionally in one `vni`), and to datagrams from it.
 */
export const METHODS = ['status', 'fdb', 'peers', 'counters', 'table', 'why'] as const;
export type Method = (typeof METHODS)[number];

/**
 * What `why` asks about: a MAC or an IP address (overlay or underlay), optionally in one VNI; `from` (a MAC or an
 * address) and `flow` (TCP / UDP ports) pick the inner flow whose outer source port is shown.
 */
export const whyQuerySchema = z.strictObject({
  target: z.string().min(1).max(64),
  vni: z.number().int().min(1).max(0xffffff).optional(),
  from: z.string().min(1).max(64).optional(),
  flow: z.strictObject({ proto: z.enum(['tcp', 'udp']), sport: z.number().int().min(0).max(65535), dport: z.number().int().min(0).max(65535) }).optional(),
});
export type WhyQuery = z.infer<typeof whyQuerySchema>;

export const requestSchema = z.strictObject({ v: z.literal(PROTOCOL_VERSION), method: z.enum(METHODS), query: whyQuerySchema.optional() });
export type Request = z.infer<typeof requestSchema>;

const counters = z.record(z.string(), z.number());
const flowCounts = { rxFrames: z.number(), rxBytes: z.number(), txFrames: z.number(), txBytes: z.number() };
/**
 * A peer's health from probing (src/dataplane/peer-health.ts); absent from routers that predate it, null fields with
 * probing off (probeInterval 0). state: up (answers probes), down (stopped answering, or never answered nor was
 * heard), unknown (does not answer probes but its traffic arrives, e.g. a kernel VTEP; or not probed long enough).
 * pathMtu: the largest outer IP packet the path carries (null: not measured); rttMs smoothed; lossPercent over the
 * last minute's liveness probes.
 */
const health = {
  state: z.enum(['up', 'down', 'unknown']).nullable().optional(),
  rttMs: z.number().nullable().optional(),
  lossPercent: z.number().nullable().optional(),
  pathMtu: z.number().int().nullable().optional(),
  pathMtuMeasuring: z.boolean().optional(),
  lastAnswerAgoMs: z.number().nullable().optional(),
};

export const statusSchema = z.strictObject({
  software: z.string(),
  pid: z.number().int(),
  startedAt: z.string(),
  uptimeSeconds: z.number(),
  engine: z.enum(['native', 'js']),
  /** The etcd network joined, or null with static peers only. */
  network: z.string().nullable(),
  vni: z.number().int(),
  tap: z.string(),
  bridge: z.string(),
  local: z.string(),
  port: z.number().int(),
  underlay: z.strictObject({ device: z.string(), mtu: z.number().int() }),
  /** The TAP's MTU, the one asked for (null: derived from the underlay), and the largest inner MTU the underlay
   * carries without fragmenting (underlay − 50, or − 70). */
  mtu: z.strictObject({ tap: z.number().int(), configured: z.number().int().nullable(), underlayLimit: z.number().int() }),
  /** Every network served (the fields above describe the first): etcd name, VNI, TAP, bridge, MTU, etcd state. */
  networks: z.array(
    z.strictObject({
      name: z.string().nullable(),
      vni: z.number().int(),
      tap: z.string(),
      bridge: z.string(),
      mtu: z.number().int(),
      configuredMtu: z.number().int().nullable(),
      /** The MTU containers get, and the etcd network's subnet (cni-config). Absent from older routers. */
      containerMtu: z.number().int().optional(),
      subnet: z.string().nullable().optional(),
      state: z.enum(['starting', 'connected', 'degraded']).nullable(),
      revision: z.number().nullable(),
      hosts: z.number().int().nullable(),
      /** This host's slice of the subnet for Docker's IPAM (--ip-range) and its gateway; null with why not. */
      range: z.string().nullable(),
      gateway: z.string().nullable(),
      rangeNote: z.string().nullable(),
      /** Why there is no range, for code to branch on (control/ip-ranges.ts); absent from routers that predate it. */
      rangeReason: z.enum(NO_RANGE_REASONS).nullable().optional(),
      /** When the bridge was found gone (null: present, the TAP on it); the TAP is kept and rejoins it when it returns.
       * Times the TAP rejoined a returning bridge, and was recreated after being deleted. Absent from older routers. */
      bridgeMissingSince: z.string().nullable().optional(),
      bridgeRejoins: z.number().int().optional(),
      tapsRecreated: z.number().int().optional(),
      /**
       * --clamp-mss on this network: off; fixed (an MSS given) or per-path (bare flag: the underlay's path − 40 / − 60),
       * ipv4 / ipv6 the ceiling; `lowered`: the peers whose measured path lowers it. Absent from older routers.
       */
      clampMss: z
        .strictObject({
          mode: z.enum(['off', 'fixed', 'per-path']),
          ipv4: z.number().int().nullable(),
          ipv6: z.number().int().nullable(),
          lowered: z.array(z.strictObject({ peer: z.string(), ipv4: z.number().int(), ipv6: z.number().int() })),
        })
        .optional(),
    }),
  ),
  /** up --docker: what keeps the Docker networks from being as etcd says (a name taken by another driver…). Absent from older routers. */
  dockerProblems: z.array(z.string()).optional(),
  offloads: z.strictObject({ tapVnetHdr: z.boolean(), udpGso: z.boolean(), udpGro: z.boolean() }),
  /**
   * The data path's event loop, why not io_uring when it was asked for ('' otherwise), and with io_uring how it
   * receives (multishot recvmsg into provided buffers, or poll + recvmmsg; EngineLoop). Absent from older routers.
   */
  loop: z.strictObject({ kind: z.enum(['threads', 'uring', 'node']), fallback: z.string(), receive: z.enum(['multishot', 'poll']).optional() }).optional(),
  controlPlane: z.strictObject({
    mode: z.enum(['static', 'etcd']),
    endpoints: z.array(z.string()),
    /** etcd only: starting / connected / degraded (etcd away: forwarding goes on with the last table), since when,
     * the revision the table reflects, hosts in the network, and whether the router started from its snapshot. */
    state: z.enum(['starting', 'connected', 'degraded']).optional(),
    since: z.string().optional(),
    revision: z.number().optional(),
    hosts: z.number().int().optional(),
    startedFrom: z.enum(['etcd', 'snapshot']).optional(),
    /** Seconds this host's records outlive it: away from etcd longer than this, the others drop it. */
    leaseTtlSeconds: z.number().int().optional(),
    /** etcd only: listings after a watch ended, other hosts' records refused (E_RECORD), leases granted again, this
     * host's MACs left out of its record (over the cap). */
    relists: z.number().int().optional(),
    rejectedRecords: z.number().int().optional(),
    leaseRegrants: z.number().int().optional(),
    unadvertisedMacs: z.number().int().optional(),
    /** Addresses this host refused to advertise (a live MAC elsewhere owns them), ownership changes the rate limit
     * held back (both since start). */
    refusedClaims: z.number().int().optional(),
    limitedOwnershipChanges: z.number().int().optional(),
    /** This host's container names left out of its names record now (invalid, or over the cap): `up --dns`. */
    unadvertisedNames: z.number().int().optional(),
    /** Local MACs withdrawn at once because they left their bridge (container gone, or moved), since start. */
    macsLeftBridge: z.number().int().optional(),
    /** Tables the data path refused (the last good one stayed): 0 unless something is very wrong. */
    tablesRefused: z.number().int().optional(),
  }),
  /** Per peer: the registry's host id (null: static), when it was last heard (null: never), inner frames/bytes. */
  peers: z.array(
    z.strictObject({
      vni: z.number().int(),
      address: z.string(),
      hostId: z.string().nullable(),
      lastSeenAgoMs: z.number().nullable(),
      ...flowCounts,
      ...health,
    }),
  ),
  /** Senders refused as not being a VTEP of the VNI they used (NAT, another source address, strays), most recent. */
  refusedSources: z.array(z.strictObject({ address: z.string(), vni: z.number().int(), count: z.number(), agoMs: z.number() })),
  /** MACs several hosts advertise at once, claimants newest first (the first gets the traffic). */
  macConflicts: z.array(z.strictObject({ vni: z.number().int(), mac: z.string(), hostIds: z.array(z.string()) })),
  /** Addresses several MACs claim: the owner (ARP / ND answer with it) and the others; advertised false: a MAC of this
   * host whose claim this host refused. Optional: a router from before it does not send it. */
  addressConflicts: z
    .array(
      z.strictObject({
        vni: z.number().int(),
        ip: z.string(),
        owner: z.strictObject({ mac: z.string(), hostId: z.string() }),
        claimants: z.array(z.strictObject({ mac: z.string(), hostId: z.string(), advertised: z.boolean() })),
      }),
    )
    .optional(),
  counters,
  /** The router process's memory in bytes (process.memoryUsage()): resident set, and of it the V8 heap (used of
   * total), memory held by JS objects outside the heap (external, of which arrayBuffers). RSS minus heapTotal is
   * mostly native: the addon, libuv, malloc. Absent from routers that predate it. */
  memory: z
    .strictObject({ rss: z.number(), heapTotal: z.number(), heapUsed: z.number(), external: z.number(), arrayBuffers: z.number() })
    .optional(),
});
export type Status = z.infer<typeof statusSchema>;

/** The offloads in use as names (tap, gso, gro), for people: `status`, `doctor` and the ready line. */
export function offloadNames(o: Status['offloads']): string[] {
  return [o.tapVnetHdr && 'tap', o.udpGso && 'gso', o.udpGro && 'gro'].filter((n): n is string => n !== false);
}

export const fdbSchema = z.array(
  z.strictObject({
    vni: z.number().int(),
    mac: z.string(),
    vtep: z.string(),
    origin: z.enum(['static', 'etcd', 'learned']),
    ageMs: z.number(),
  }),
);
export type FdbRows = z.infer<typeof fdbSchema>;

export const peersSchema = z.array(
  z.strictObject({
    address: z.string(),
    port: z.number().int(),
    vnis: z.array(z.number().int()),
    /** Where the router knows it from. */
    origin: z.enum(['static', 'etcd']),
    /** From its registry record (null for a static peer): host id, networks, MTU, software, ms since it changed. */
    hostId: z.string().nullable(),
    networks: z.array(z.string()),
    mtu: z.number().int().nullable(),
    software: z.string().nullable(),
    lastUpdateAgoMs: z.number().nullable(),
    /** ms since a datagram from it was last accepted (null: never). */
    lastSeenAgoMs: z.number().nullable(),
    ...flowCounts,
    ...health,
    /** The TCP MSS clamp toward it (--clamp-mss, lowered to its path as status and why show it); null: off. Absent from older routers. */
    clampMss: z.strictObject({ ipv4: z.number().int(), ipv6: z.number().int() }).nullable().optional(),
  }),
);
export type PeerRows = z.infer<typeof peersSchema>;

export const countersSchema = counters;
export type CounterRows = z.infer<typeof countersSchema>;

export { tableSchema };
export type TableRows = z.infer<typeof tableSchema>;

export const whySchema = z.strictObject({
  target: z.string(),
  /** Frames to that MAC (or to the MAC the address resolves to), per VNI: where they go and why. */
  frames: z.array(
    z.strictObject({
      vni: z.number().int(),
      mac: z.string(),
      /** The overlay address asked about, when the target was one. */
      ip: z.string().nullable(),
      /** remote: one VTEP; local: on this host's bridge (the router does not carry it); flood: unknown unicast, to every peer; none: no peer at all. */
      verdict: z.enum(['remote', 'local', 'flood', 'none']),
      origin: z.enum(['static', 'etcd', 'learned']).nullable(),
      vtep: z.string().nullable(),
      /** Learned entries: ms since the MAC was last seen from that VTEP; local MACs: since seen on the bridge. */
      ageMs: z.number().nullable(),
      /** ms since a datagram from the VTEP was last accepted (null: never, or no VTEP). */
      lastHeardAgoMs: z.number().nullable(),
      /**
       * The largest IP packet the path to it carries (larger ones: tx_too_big, answered with ICMP too-big): the VTEP's
       * measured path MTU less the encapsulation, or the underlay's; a flood: the smallest of its peers'.
       */
      pathMtu: z.number().int(),
      /** remote: where pathMtu comes from (measured; measuring: a search under way; assumed: the underlay's, not measured). */
      pathMtuSource: z.enum(['measured', 'measuring', 'route', 'assumed']).nullable(),
      /** remote: the VTEP's probe state (null: probing off, or no VTEP). */
      peerState: z.enum(['up', 'down', 'unknown']).nullable(),
      /** The MSS clamp toward it (the configured one, lowered to its path; a flood: the smallest), null when off or local. */
      clampMss: z.strictObject({ ipv4: z.number().int(), ipv6: z.number().int() }).nullable(),
      /** etcd entries: the etcd revision where its host's record first claimed the MAC (null otherwise). */
      revision: z.number().int().nullable(),
      /** The outer UDP source port of the datagrams of one inner flow to it (`flow` says which), or null: no sender known to hash. */
      sourcePort: z.strictObject({ port: z.number().int(), flow: z.string() }).nullable(),
      detail: z.string(),
    }),
  ),
  /** The target as a sender on the underlay (an IP address): whether its datagrams are accepted, and why. */
  sender: z
    .strictObject({
      address: z.string(),
      verdict: z.enum(['accepted', 'refused']),
      vnis: z.array(z.number().int()),
      refusedCount: z.number(),
      lastRefusedAgoMs: z.number().nullable(),
      /** Per VNI it is a peer of, where that comes from: static (--peer) or etcd (the host id of its record when known). */
      peerOf: z.array(z.strictObject({ vni: z.number().int(), origin: z.enum(['static', 'etcd']), hostId: z.string().nullable() })),
      /** The receive rule, as the engines apply it (classifyDatagram in src/dataplane/classify.ts, Classify in native/src/wire.h). */
      rule: z.string(),
      detail: z.string(),
    })
    .nullable(),
  /** TCP MSS clamping of SYNs both ways (--clamp-mss): the ceiling per inner family (lower toward a smaller path), or null when off. */
  clampMss: z.strictObject({ ipv4: z.number().int(), ipv6: z.number().int() }).nullable(),
  /** The router-wide drop counters such frames and datagrams hit, with their values now. */
  counters: counters,
});
export type WhyResult = z.infer<typeof whySchema>;

export const RESULT_SCHEMAS = { status: statusSchema, fdb: fdbSchema, peers: peersSchema, counters: countersSchema, table: tableSchema, why: whySchema } as const;
export type Result<M extends Method> = z.infer<(typeof RESULT_SCHEMAS)[M]>;

export const responseSchema = z.union([
  z.strictObject({ ok: z.literal(true), result: z.unknown() }),
  z.strictObject({ ok: z.literal(false), error: z.string() }),
]);
export type Response = z.infer<typeof responseSchema>;

const packr = new Packr({ useRecords: false });

/** One frame: length prefix + msgpack body. */
export function encodeFrame(value: unknown): Buffer {
  const body = packr.pack(value);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

export class FrameError extends Error {}

/**
 * Collects stream chunks into frames. `push` returns the bodies completed so far (decoded); a length beyond
 * MAX_FRAME or a body that is not msgpack throws FrameError (the caller closes the connection).
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  /** `maxFrame`: the largest body accepted (the router reading requests passes MAX_REQUEST). */
  constructor(private readonly maxFrame = MAX_FRAME) {}

  push(chunk: Buffer): unknown[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: unknown[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len > this.maxFrame) throw new FrameError(`frame of ${len} bytes is larger than ${this.maxFrame}: not a vxlan-router control stream`);
      if (this.buf.length < 4 + len) break;
      const body = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      try {
        out.push(packr.unpack(body));
      } catch (cause) {
        throw new FrameError(`undecodable frame: ${(cause as Error).message}`);
      }
    }
    return out;
  }
}
