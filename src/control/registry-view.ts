/**
 * The registry's pure logic, apart from etcd so it can be tested without one: what the hosts of a network are (from
 * a listing and then watch events, with bad records ignored and counted), the table the data path gets from them,
 * and the control plane's state (starting / connected / degraded since when) on an injected clock.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import type { TableSnapshot } from '../fdb/index.js';
import { formatIp, MAX_VNI, parseIp, VXLAN_PORT } from '../packet/index.js';

const ip = z.string().refine((s) => isIP(s) !== 0, { message: 'is not an IP address' });

export const networkDefinitionSchema = z.strictObject({
  version: z.literal(1),
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, { message: 'is not a network name (a-z, 0-9, . _ -)' }),
  vni: z.number().int().min(1).max(MAX_VNI),
  subnet: z.string().regex(/^[0-9a-f.:]+\/\d{1,3}$/i, { message: 'is not a CIDR subnet' }),
  mtu: z.number().int().min(68).max(65535).optional(),
  port: z.number().int().min(1).max(65535).default(VXLAN_PORT),
  /** Prefix length of each host's slice of the subnet (Docker IPAM ranges); default from the subnet's size. */
  hostPrefix: z.number().int().min(1).max(30).optional(),
});
export type NetworkDefinition = z.infer<typeof networkDefinitionSchema>;

export const hostRecordSchema = z.object({
  version: z.literal(1),
  hostId: z.string().min(1),
  underlay: z.array(ip).min(1),
  port: z.number().int().min(1).max(65535),
  networks: z.array(z.string()),
  mtu: z.number().int(),
  software: z.string(),
  startedAt: z.string(),
});
export type HostRecord = z.infer<typeof hostRecordSchema>;

/** Why a record under hosts/<id> was not accepted. */
export class RejectedRecord extends Error {
  constructor(readonly id: string, reason: string, kind: 'host' | 'MAC' = 'host') {
    super(`ignoring the ${kind} record of ${id}: ${reason}`);
    this.name = 'RejectedRecord';
  }
}

/** A record under hosts/<id> or macs/<id>: JSON matching `schema` and naming `id` as its host; or why not. */
function parseRecord<T extends { hostId: string }>(schema: z.ZodType<T>, id: string, value: string): { record: T } | { reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    return { reason: 'not JSON' };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { reason: `${issue.path.join('.') || 'record'} ${issue.message}` };
  }
  if (parsed.data.hostId !== id) return { reason: `its hostId is ${JSON.stringify(parsed.data.hostId)}` };
  return { record: parsed.data };
}

/**
 * The hosts of one network, keyed by the id in their key. A value that is not JSON, does not match the schema or
 * names another host than its key is rejected: counted, reported, and it removes whatever that key held before (the
 * key no longer holds a valid record). Never throws.
 */
export class HostView {
  private readonly byId = new Map<string, HostRecord>();
  /** When each record was last put (the peers command's "last update"). */
  private readonly updated = new Map<string, number>();
  rejected = 0;

  constructor(
    private readonly vni: number,
    private readonly selfId: string,
    private readonly onReject: (err: RejectedRecord) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Replaces everything with a listing's contents. */
  reset(entries: Iterable<{ readonly id: string; readonly value: string }>): void {
    this.byId.clear();
    for (const e of entries) this.put(e.id, e.value);
  }

  /** A put of hosts/<id>: returns whether the record was accepted. */
  put(id: string, value: string): boolean {
    const r = parseRecord(hostRecordSchema, id, value);
    if ('reason' in r) return this.reject(id, r.reason);
    this.byId.set(id, r.record);
    this.updated.set(id, this.now());
    return true;
  }

  delete(id: string): void {
    this.byId.delete(id);
    this.updated.delete(id);
  }

  /** Each host's record and when it was last put (ms since the epoch). */
  rows(): { record: HostRecord; updatedAt: number }[] {
    return [...this.byId].map(([id, record]) => ({ record, updatedAt: this.updated.get(id)! }));
  }

  get size(): number {
    return this.byId.size;
  }

  hosts(): HostRecord[] {
    return [...this.byId.values()];
  }

  /** The data path's view: every other host of the network is a peer (flood list and source allow-list). */
  table(): TableSnapshot {
    const peers = this.hosts()
      .filter((h) => h.hostId !== this.selfId)
      .map((h) => h.underlay[0]!);
    return { vnis: [{ vni: this.vni, peers, macs: [] }] };
  }

  private reject(id: string, reason: string): false {
    this.delete(id);
    this.rejected++;
    this.onReject(new RejectedRecord(id, reason));
    return false;
  }
}

/** The MACs one host has seen on its bridge side (its containers), advertised under its lease. */
export const macRecordSchema = z.strictObject({
  version: z.literal(1),
  hostId: z.string().min(1),
  vtep: ip,
  macs: z.array(
    z.strictObject({
      vni: z.number().int().min(1).max(MAX_VNI),
      mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
      /**
       * IPv4 and IPv6 addresses the MAC used, sorted (older routers wrote IPv4 only, most recent first: parsed as
       * before), for ARP / ND suppression and gratuitous ARP / unsolicited NA elsewhere.
       */
      ips: z.array(ip).max(16).optional(),
    }),
  ),
});
export type MacRecord = z.infer<typeof macRecordSchema>;

/** Who holds a claim (a MAC, or an address at a MAC) and since when: the etcd revision and local time it appeared. */
interface Claim {
  readonly id: string;
  readonly vtep: string;
  readonly since: number;
  readonly seenAt: number;
}

/**
 * Every host's advertised MACs, keyed by host id. A MAC two hosts claim (it moved, and the old host has not noticed
 * yet) belongs to the host that claimed it last: each MAC of a record, and each address of a MAC, carries the etcd
 * revision of the write where it first appeared in that host's record (`since`), which a later rewrite of the same
 * record for another reason (another container, an address added) does not change. So a host that moved a container
 * away cannot take it back by rewriting its record, and the advertiser can tell it to withdraw (`claimOf`). After a
 * listing the history is gone: claims date from their record's revision. Bad records are rejected as in HostView.
 * Never throws.
 */
export class MacView {
  private readonly byId = new Map<string, { record: MacRecord; since: Map<string, number>; seenAt: Map<string, number> }>();
  rejected = 0;

  constructor(
    private readonly onReject: (err: RejectedRecord) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  reset(entries: Iterable<{ readonly id: string; readonly value: string; readonly revision: number }>): void {
    this.byId.clear();
    for (const e of entries) this.put(e.id, e.value, e.revision);
  }

  put(id: string, value: string, revision: number): boolean {
    const r = parseRecord(macRecordSchema, id, value);
    if ('reason' in r) return this.reject(id, r.reason);
    const prev = this.byId.get(id);
    const since = new Map<string, number>();
    const seenAt = new Map<string, number>();
    const keep = (key: string): void => {
      since.set(key, prev?.since.get(key) ?? revision);
      seenAt.set(key, prev?.seenAt.get(key) ?? this.now());
    };
    for (const m of r.record.macs) {
      keep(macKey(m.vni, m.mac));
      for (const text of m.ips ?? []) keep(ipKey(m.vni, canonicalIp(text), m.mac));
    }
    this.byId.set(id, { record: r.record, since, seenAt });
    return true;
  }

  delete(id: string): void {
    this.byId.delete(id);
  }

  /** The latest claim of a MAC (this host's own included), or undefined when no host advertises it. */
  claimOf(vni: number, mac: string): Claim | undefined {
    return this.claims(vni).macs.get(mac);
  }

  /** Other hosts' MACs of `vni` → their VTEP (the latest claim wins); none that `selfId` holds the latest claim of. */
  macs(vni: number, selfId: string): { mac: string; vtep: string; origin: 'etcd'; ips: readonly string[] }[] {
    return this.remote(vni, selfId).macs;
  }

  /** `macs` and `neighbors` of `vni` from one pass over the records (the table needs both at each change). */
  remote(vni: number, selfId: string): { macs: { mac: string; vtep: string; origin: 'etcd'; ips: readonly string[] }[]; neighbors: { ip: string; mac: string }[] } {
    const { macs, ips } = this.claims(vni);
    const ipsOf = new Map<string, string[]>();
    for (const [ip, c] of ips) ipsOf.set(c.mac, [...(ipsOf.get(c.mac) ?? []), ip]);
    return {
      macs: [...macs].filter(([, c]) => c.id !== selfId).map(([mac, c]) => ({ mac, vtep: c.vtep, origin: 'etcd' as const, ips: ipsOf.get(mac) ?? [] })),
      neighbors: [...ips].filter(([, c]) => c.id !== selfId).map(([ip, c]) => ({ ip, mac: c.mac })),
    };
  }

  /**
   * MACs that several hosts claim at once, with the claimants latest first (the first one gets the traffic). A MAC
   * that moved is claimed twice only until the old host withdraws it; one claimed for long is a conflict.
   */
  conflicts(): { vni: number; mac: string; hostIds: string[] }[] {
    const claims = new Map<string, { vni: number; mac: string; by: { id: string; since: number }[] }>();
    for (const [id, { record, since }] of this.byId) {
      for (const m of record.macs) {
        const key = macKey(m.vni, m.mac);
        const c = claims.get(key) ?? { vni: m.vni, mac: m.mac, by: [] };
        c.by.push({ id, since: since.get(key)! });
        claims.set(key, c);
      }
    }
    return [...claims.values()]
      .filter((c) => c.by.length > 1)
      .map((c) => ({ vni: c.vni, mac: c.mac, hostIds: c.by.sort((a, b) => b.since - a.since || a.id.localeCompare(b.id)).map((b) => b.id) }));
  }

  /**
   * Remote addresses of `vni` → MAC, for ARP and ND suppression: each from its latest claim (an address re-bound to
   * a container elsewhere belongs to the new one), and none whose latest claim is this host's own.
   */
  neighbors(vni: number, selfId: string): { ip: string; mac: string }[] {
    return this.remote(vni, selfId).neighbors;
  }

  /** The latest claim of each MAC and of each address of `vni` (ties: the lower host id, so every host agrees). */
  private claims(vni: number): { macs: Map<string, Claim>; ips: Map<string, Claim & { mac: string }> } {
    const macs = new Map<string, Claim>();
    const ips = new Map<string, Claim & { mac: string }>();
    const later = (a: Claim | undefined, b: Claim): boolean => a === undefined || b.since > a.since || (b.since === a.since && b.id < a.id);
    for (const [id, { record, since, seenAt }] of this.byId) {
      for (const m of record.macs) {
        if (m.vni !== vni) continue;
        const k = macKey(vni, m.mac);
        const c = { id, vtep: record.vtep, since: since.get(k)!, seenAt: seenAt.get(k)! };
        if (later(macs.get(m.mac), c)) macs.set(m.mac, c);
        for (const text of m.ips ?? []) {
          const ip = canonicalIp(text);
          const ki = ipKey(vni, ip, m.mac);
          const ci = { id, vtep: record.vtep, since: since.get(ki)!, seenAt: seenAt.get(ki)!, mac: m.mac };
          if (later(ips.get(ip), ci)) ips.set(ip, ci);
        }
      }
    }
    return { macs, ips };
  }

  private reject(id: string, reason: string): false {
    this.byId.delete(id);
    this.rejected++;
    this.onReject(new RejectedRecord(id, reason, 'MAC'));
    return false;
  }
}

const macKey = (vni: number, mac: string): string => `${vni}/${mac}`;
const ipKey = (vni: number, ip: string, mac: string): string => `${vni}/${mac}/${ip}`;
/** One spelling per IPv6 address, whoever wrote the record. */
const canonicalIp = (text: string): string => formatIp(parseIp(text));

export type ControlPlaneStatus = 'starting' | 'connected' | 'degraded';

/** What `status` shows about the control plane. */
export interface ControlPlaneState {
  /** starting: not joined yet, nothing failed; connected: joined and following etcd; degraded: etcd is away (the data path forwards with the last table). */
  readonly state: ControlPlaneStatus;
  /** When the state last changed (ISO time). */
  readonly since: string;
  /** The etcd revision the table reflects (0 before the first listing; the snapshot's when started from one). */
  readonly revision: number;
  /** Hosts in the network, this one included. */
  readonly hosts: number;
}

/** Something that keeps the control plane from being connected. */
export type Problem = 'join' | 'watch' | 'lease';

/**
 * The state machine: 'starting' until the first join, then 'connected' while no problem is active, 'degraded' while
 * one is (a problem before the first join is also 'degraded': the router may be forwarding from a snapshot).
 */
export class ControlPlaneTracker {
  private readonly problems = new Set<Problem>();
  private joined = false;
  private status: ControlPlaneStatus = 'starting';
  private sinceMs: number;

  constructor(private readonly now: () => number = Date.now) {
    this.sinceMs = now();
  }

  /** Sets or clears a problem; returns whether the state changed. */
  set(problem: Problem, active: boolean): boolean {
    if (active) this.problems.add(problem);
    else this.problems.delete(problem);
    return this.update();
  }

  /** The first successful join (list + watch); returns whether the state changed. */
  markJoined(): boolean {
    this.joined = true;
    this.problems.delete('join');
    return this.update();
  }

  get current(): ControlPlaneStatus {
    return this.status;
  }

  /** Which problems are active, for messages. */
  active(): Problem[] {
    return [...this.problems];
  }

  state(revision: number, hosts: number): ControlPlaneState {
    return { state: this.status, since: new Date(this.sinceMs).toISOString(), revision, hosts };
  }

  private update(): boolean {
    const next: ControlPlaneStatus = this.problems.size > 0 ? 'degraded' : this.joined ? 'connected' : 'starting';
    if (next === this.status) return false;
    this.status = next;
    this.sinceMs = this.now();
    return true;
  }
}

/** Delay before retry `attempt` (0-based): doubling from `initialMs`, capped at `maxMs`. */
export function retryDelay(attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
}
