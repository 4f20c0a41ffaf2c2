/**
 * The router's configuration: one schema for the YAML file and the command-line flags, so both are validated by the
 * same rules and an error can name the key and where it came from. Defaults of tunables live here.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { LOG_LEVELS } from '../log.js';
import { MAX_VNI, NETWORK_NAME_PATTERN, NETWORK_NAME_RULE, VXLAN_PORT } from '../packet/index.js';

export const ENGINES = ['native', 'js'] as const;
/** Native engine offloads: TAP virtio header (TSO in, merged super-frames out), UDP GSO sends, UDP GRO receives. */
export const OFFLOADS = ['tap', 'gso', 'gro'] as const;
export type Offload = (typeof OFFLOADS)[number];
/** Native engine event loop: threads (one per TAP and one for receiving), uring (one thread on one io_uring), or
 * auto (uring where the kernel allows it). uring and auto fall back to threads where io_uring is missing or
 * forbidden (a container's seccomp profile, kernel.io_uring_disabled); `status` says which runs. */
export const LOOPS = ['threads', 'uring', 'auto'] as const;
export type LoopChoice = (typeof LOOPS)[number];

/** An integer in [min, max], with messages that read well after the value ("70000 is out of range 1-65535"). */
const intIn = (min: number, max: number) =>
  z
    .number({ message: 'is not a number' })
    .int({ message: 'is not an integer' })
    .min(min, { message: `is out of range ${min}-${max}` })
    .max(max, { message: `is out of range ${min}-${max}` });

const ip = z.string().refine((s) => isIP(s) !== 0, { message: 'is not an IPv4 or IPv6 address' });

/** Linux interface names: 1-15 bytes, no '/', ':' or whitespace. */
const ifname = z
  .string()
  .regex(/^[^\s/:]{1,15}$/, { message: 'is not a valid interface name (1-15 characters, no "/", ":" or spaces)' });

const networkName = z.string().regex(NETWORK_NAME_PATTERN, { message: NETWORK_NAME_RULE });
const mtu = intIn(68, 65535);

export const configSchema = z.strictObject({
  local: ip,
  /** Required without etcd; with etcd the network's definition gives it. */
  vni: intIn(1, MAX_VNI).optional(),
  /** The bridge the TAP joins; with several networks, the default for those that name none. */
  bridge: ifname.optional(),
  peers: z.array(ip).default([]),
  tap: ifname.optional(),
  port: intIn(1, 65535).default(VXLAN_PORT),
  /** TAP MTU; default DEFAULT_TAP_MTU (65000): the path limit (underlay − 50 / − 70) is the router's to enforce. */
  mtu: mtu.optional(),
  engine: z.enum(ENGINES).default('native'),
  learning: z.boolean().default(true),
  /** Answer ARP requests for containers known from etcd on the bridge itself, instead of flooding them. */
  arpSuppression: z.boolean().default(true),
  /**
   * TCP MSS clamping of SYNs crossing the overlay, both ways: true = the path MTU − 40 (IPv4) / − 60 (IPv6), a number
   * = that MSS for both, false = off. For paths where the ICMP too-big answers do not reach the sender.
   */
  clampMss: z.union([z.boolean({ message: 'is not true, false or an MSS (88-65495)' }), intIn(88, 65495)]).default(false),
  /** Native engine offloads to use, each probed at start (the kernel may refuse it); [] = one frame per datagram. */
  offloads: z.array(z.enum(OFFLOADS)).default([...OFFLOADS]),
  /** Native engine event loop (LOOPS). */
  loop: z.enum(LOOPS).default('auto'),
  /** Seconds a learned MAC stays without being seen again. */
  agingSeconds: intIn(1, 86400).default(300),
  /**
   * Learned MACs per (network, peer) and in all, like a switch port's MAC limit: a frame from a new source MAC over
   * either is dropped (rx_learn_full). Defaults pinned to the engines' by test/fdb/fdb.test.ts.
   */
  learnMaxPerPeer: intIn(1, 1048576).default(4096),
  learnMax: intIn(1, 1048576).default(65536),
  /**
   * Drop inbound frames whose source MAC is one of this host's containers, or lives on another host per etcd/static
   * config (rx_spoofed_source). Off only for unusual set-ups (a MAC legitimately behind several hosts).
   */
  sourceCheck: z.boolean().default(true),
  /**
   * This host's own MACs (sources seen on a bridge, advertised to the other hosts) kept per network: a new one beyond
   * it is not recorded nor advertised (local_mac_refused); they age out after agingSeconds.
   */
  maxLocalMacs: intIn(1, 65536).default(1024),
  /**
   * Seconds between liveness probes to each peer (0: no probing): state, RTT, loss and the path MTU, which is checked
   * every 2 intervals (src/dataplane/peer-health.ts). A peer is down after 3 intervals without an answer.
   */
  probeInterval: intIn(0, 3600).default(5),
  /** etcd endpoints (e.g. http://198.51.100.254:2379): peers then come from the registry. */
  etcd: z.array(z.string().regex(/^https?:\/\/[^\s/]+$/, { message: 'is not an etcd endpoint (http://host:port)' })).optional(),
  /** The overlay network to join, as defined in etcd by `vxlan-router network create`. */
  network: networkName.default('default'),
  /** With etcd: several networks served by this one process, each on its own bridge (instead of `network`). */
  networks: z.array(z.strictObject({ name: networkName, bridge: ifname.optional(), tap: ifname.optional(), mtu: mtu.optional() })).min(1, { message: 'is empty' }).optional(),
  /** Stable identity of this host in the registry (default: machine id + local address). */
  hostId: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, { message: 'is not a host id (letters, digits, . _ : -)' }).optional(),
  /** Structured logs on stderr from this level up. */
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /** Prometheus metrics at http://<this>/metrics, or off. */
  metrics: z
    .string()
    .regex(/^(off|(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):\d{1,5})$/, { message: 'is not host:port (e.g. 127.0.0.1:9477) or off' })
    .default('127.0.0.1:9477'),
  /** The control socket (`status`, `fdb`, `peers`, `counters`, `table`); default <run dir>/<tap>.sock (paths.ts). */
  socket: z.string().regex(/^\/\S+$/, { message: 'is not an absolute path' }).optional(),
  /**
   * Docker's network and IPAM plugin (`docker network create -d vxlan-router --ipam-driver vxlan-router …`) on this
   * socket, or off. Docker finds plugins in /run/docker/plugins (DEFAULT_PLUGIN_SOCKET).
   */
  dockerPlugin: z.union([z.literal('off'), z.string().regex(/^\/\S+$/, { message: 'is not an absolute path (or off)' })]).default('off'),
  /**
   * Serve container names across hosts (DNS) on this address (up --dns; agent/dns-server.ts), learned from the
   * dockerd at `dockerSocket`; absent: off.
   */
  dns: z.union([z.literal('off'), ip]).optional(),
  /**
   * One step per Docker host (needs etcd): serve every network defined in etcd (those not named in `networks` on a
   * bridge `vxr-<name>` the router makes), serve the plugin (dockerPlugin's default socket unless given), and keep a
   * Docker network of each name on dockerd (`dockerSocket`).
   */
  docker: z.boolean().default(false),
  /** dockerd's API socket (docker: the Docker networks are made and removed through it; dns: container names). */
  dockerSocket: z.string().regex(/^\/\S+$/, { message: 'is not an absolute path' }).default('/var/run/docker.sock'),
  /** Seconds a crashed host stays in the others' tables (its records' lease TTL). */
  leaseTtl: intIn(2, 3600).default(15),
  /** Where the registry's snapshot (<network>.snapshot) is kept, so a restart while etcd is away forwards as before. */
  stateDir: z.string().min(1, { message: 'is empty' }).optional(),
  /** TLS to etcd (PEM files): the CA that signed etcd's certificate, and this client's certificate and key. */
  etcdCa: z.string().min(1, { message: 'is empty' }).optional(),
  etcdCert: z.string().min(1, { message: 'is empty' }).optional(),
  etcdKey: z.string().min(1, { message: 'is empty' }).optional(),
  /** etcd user and password (the password also from VXLAN_ROUTER_ETCD_PASSWORD, so it stays out of argv). */
  etcdUser: z.string().min(1, { message: 'is empty' }).optional(),
  etcdPassword: z.string().min(1, { message: 'is empty' }).optional(),
});

/** A checked config; `stateDir` is filled in (paths.ts: the namespace's default unless given). */
export type RouterConfig = Readonly<z.infer<typeof configSchema> & { stateDir: string }>;
export type ConfigKey = keyof z.input<typeof configSchema>;
export const CONFIG_KEYS = Object.keys(configSchema.shape) as ConfigKey[];

/** One network this router serves: a VNI on a bridge through its own TAP. */
export interface NetworkJoin {
  /** The etcd network (undefined: static mode, the VNI comes from `vni`). */
  readonly name: string | undefined;
  readonly bridge: string;
  readonly tap?: string;
  readonly mtu?: number;
}
