/**
 * Hitless restart and upgrade: a new router (`vxlan-router up ... --takeover`) takes over the running one's UDP
 * socket and TAPs, with its table, learned MACs and local MACs, and the old one exits without withdrawing from etcd.
 *
 * The exchange, a short conversation on the old router's control socket:
 *   new: listens on a one-shot Unix socket (`<socket>.handover-<pid>`), then asks `takeover` with its handover
 *        version, its engine, underlay address, port, and the VNIs and TAP names it would serve;
 *   old: refuses (and keeps forwarding) when any of these differ; otherwise answers with its state (table, learned
 *        and local MACs, TAP MTUs) while it still forwards;
 *   new: checks the state and readies itself, then says `takeover-go` and waits on the one-shot socket;
 *   old: stops its data path threads (the fds stay open with whatever the kernel queued), sends the UDP socket and
 *        the TAPs over the one-shot socket (SCM_RIGHTS, native/src/fd-passing.cc), answers with how long it paused,
 *        and closes everything except the etcd lease and the TAPs, then exits 0;
 *   new: starts its threads on the fds at once (they drain the queues), joins etcd under a new lease that replaces
 *        the old one's records, waits for the old process to end, and serves the control socket and metrics.
 * Until `takeover-go` nothing has changed on the old side: a new router that fails or goes away leaves it running.
 *
 * HANDOVER_VERSION changes whenever the request, the state or the fd message changes shape: a router refuses a peer
 * of another version with a message that says both, and keeps running.
 */
import { readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { z } from 'zod';
import { toRouterError, type EngineKind, type NativeAddon } from '../dataplane/index.js';
import { VxlanRouterError } from '../errors.js';
import { tableSchema } from '../fdb/index.js';
import { encodeFrame, FrameReader, PROTOCOL_VERSION, responseSchema, SOFTWARE } from './control-protocol.js';

export const HANDOVER_VERSION = 1;

export const takeoverRequestSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  method: z.literal('takeover'),
  handover: z.number().int(),
  software: z.string().max(200),
  pid: z.number().int(),
  /** The one-shot socket the fds go to (sun_path: at most 107 bytes). */
  path: z.string().min(1).max(107),
  engine: z.enum(['native', 'js']),
  local: z.string().max(64),
  port: z.number().int(),
  networks: z.array(z.strictObject({ vni: z.number().int(), tap: z.string().max(15) })).max(64),
});
export type TakeoverRequest = z.infer<typeof takeoverRequestSchema>;

const learnedSchema = z.strictObject({ vni: z.number().int(), mac: z.string(), vtep: z.string(), ageMs: z.number().int().nonnegative() });
const localMacSchema = z.strictObject({ vni: z.number().int(), mac: z.string(), ageMs: z.number().nonnegative(), ips: z.array(z.string()) });

/** What the old router answers with: everything the new one forwards with until its own control planes speak. */
export const handoverStateSchema = z.strictObject({
  handover: z.number().int(),
  software: z.string(),
  pid: z.number().int(),
  table: tableSchema,
  learned: z.array(learnedSchema),
  localMacs: z.array(localMacSchema),
  /** The TAPs as they are (MTU included): the new router keeps them so. */
  networks: z.array(z.strictObject({ vni: z.number().int(), tap: z.string(), mtu: z.number().int() })),
  /** The name server's address the old router put on lo (`up --dns`): left there, the new router removes it at its stop. */
  dnsAdded: z.string().max(64).optional(),
});
export type HandoverState = z.infer<typeof handoverStateSchema>;

/** The new router's word to go ahead, once it is ready to start its threads. */
export const goSchema = z.strictObject({ v: z.literal(PROTOCOL_VERSION), method: z.literal('takeover-go') });
/** The old router's last word: how long its data path paused before the fds were sent (µs). */
export const doneSchema = z.strictObject({ pauseUs: z.number().nonnegative() });

/** The header of the fd message: which passed fd is what. */
export const fdHeaderSchema = z.strictObject({
  handover: z.number().int(),
  rx: z.number().int().nonnegative(),
  taps: z.array(z.strictObject({ vni: z.number().int(), index: z.number().int().nonnegative() })),
});
export type FdHeader = z.infer<typeof fdHeaderSchema>;

function handoverError(message: string, hint?: string): VxlanRouterError {
  return new VxlanRouterError('E_CONTROL', message, { kind: 'handover', ...(hint !== undefined ? { hint } : {}) });
}

/**
 * The old router's check of a takeover request: why it cannot hand over to this peer, or undefined. Nothing has
 * changed yet when it refuses.
 */
export function refusal(req: TakeoverRequest, self: { engine: string; local: string; port: number; networks: readonly { vni: number; tap: string }[]; canHandOver: boolean }): string | undefined {
  if (req.handover !== HANDOVER_VERSION)
    return `handover version ${req.handover} (${req.software}) is not this router's ${HANDOVER_VERSION} (${SOFTWARE}): stop this router and start the new one instead (a plain restart)`;
  if (!self.canHandOver || req.engine !== 'native') return `the ${self.canHandOver ? req.engine : self.engine} engine cannot take over sockets: restart the router instead (a short gap)`;
  if (req.local !== self.local || req.port !== self.port) return `this router serves ${self.local}:${self.port}, the new one asks for ${req.local}:${req.port}`;
  // The new router may serve networks this one does not (it opens their TAPs) and leave some out (it closes their
  // TAPs: `up --docker` after a network was defined or removed in etcd); a VNI both serve keeps its TAP.
  const key = (n: { vni: number; tap: string }): string => `${n.vni}/${n.tap}`;
  const clash = req.networks.find((r) => self.networks.some((m) => (m.vni === r.vni) !== (m.tap === r.tap)));
  if (clash !== undefined) {
    const mine = self.networks.map(key).sort().join(',');
    return `this router serves VNI/TAP ${mine}, the new one asks for ${req.networks.map(key).sort().join(',')} (${key(clash)} differs)`;
  }
  return undefined;
}

/** The new router's side of the conversation, once the old router has answered with its state. */
interface Conversation {
  readonly state: HandoverState;
  /** Says takeover-go (written out before this returns, as far as the kernel takes it). */
  go(): void;
  /** The old router's last word (its pause), or the error it ended with. */
  readonly done: Promise<{ pauseUs: number } | VxlanRouterError>;
  close(): void;
}

/**
 * Asks the router on `socket` to hand over. Resolves with its state while it still forwards; rejects (E_CONTROL,
 * kind 'handover') when it refuses, cannot be reached, or answers something else.
 */
export function requestTakeover(socket: string, req: TakeoverRequest, timeoutMs = 10_000): Promise<Conversation> {
  return new Promise((resolve, reject) => {
    const reader = new FrameReader();
    const sock = connect(socket);
    let settleDone: (v: { pauseUs: number } | VxlanRouterError) => void = () => undefined;
    const done = new Promise<{ pauseUs: number } | VxlanRouterError>((r) => (settleDone = r));
    let stage: 'state' | 'done' = 'state';
    const fail = (err: VxlanRouterError): void => {
      sock.destroy();
      if (stage === 'state') reject(err);
      settleDone(err);
    };
    sock.setTimeout(timeoutMs, () => fail(handoverError(`no handover from the router on ${socket} within ${timeoutMs} ms`)));
    sock.once('connect', () => sock.write(encodeFrame(req)));
    sock.on('error', (err: NodeJS.ErrnoException) =>
      fail(handoverError(`--takeover: no router answers on ${socket} (${err.code ?? err.message})`, 'start it without --takeover, or pass the running router\'s --socket')),
    );
    sock.on('close', () => fail(handoverError(`the router on ${socket} closed the connection`)));
    sock.on('data', (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = reader.push(chunk);
      } catch (err) {
        return fail(handoverError(`${socket}: ${(err as Error).message}`));
      }
      for (const frame of frames) {
        const res = responseSchema.safeParse(frame);
        if (!res.success) return fail(handoverError(`${socket}: not a vxlan-router answer`));
        if (!res.data.ok) {
          const old = res.data.error.startsWith('bad request') ? ' (a router too old to hand over: restart it instead)' : '';
          return fail(handoverError(`the running router refused the takeover: ${res.data.error}${old}`, 'it keeps running; fix the difference, or stop it and start this one'));
        }
        if (stage === 'done') {
          const d = doneSchema.safeParse(res.data.result);
          settleDone(d.success ? d.data : handoverError('the running router ended the handover with an answer this version cannot read'));
          sock.destroy();
          return;
        }
        const state = handoverStateSchema.safeParse(res.data.result);
        if (!state.success) return fail(handoverError(`the running router's handover state does not match this version (${HANDOVER_VERSION}): ${state.error.issues[0]?.message ?? ''}`));
        if (state.data.handover !== HANDOVER_VERSION) return fail(handoverError(`the running router speaks handover version ${state.data.handover}, this one ${HANDOVER_VERSION}`));
        stage = 'done';
        resolve({
          state: state.data,
          go: () => void sock.write(encodeFrame({ v: PROTOCOL_VERSION, method: 'takeover-go' })),
          done,
          close: () => sock.destroy(),
        });
      }
    });
  });
}

/** True when `pid` has exited: no such process, or a zombie its parent has not reaped yet. */
function exited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }
}

/** Resolves once `pid` has exited (or after `timeoutMs`: false). */
export async function processGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited(pid)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What the new router got: the old one's state, its UDP socket, and each VNI's TAP (fd, name, virtio headers). */
/** A TAP's fd with its name and whether it has a virtio-net header (handed over, or opened by the new router). */
export interface TapFd {
  readonly fd: number;
  readonly name: string;
  readonly vnetHdr: boolean;
}

export interface TakenOver {
  readonly state: HandoverState;
  readonly rxFd: number;
  readonly taps: ReadonlyMap<number, TapFd>;
}

/**
 * The new router's whole exchange: listens on `<socket>.handover-<pid>`, asks, receives the fds. Throws (with every
 * received fd closed) when the old router refuses, or when what arrives does not match what was asked for.
 */
export async function takeOver(
  native: Pick<NativeAddon, 'listenHandover' | 'acceptFds' | 'inspectTap' | 'closeFd'>,
  socket: string,
  want: { engine: EngineKind; local: string; port: number; networks: readonly { vni: number; tap: string }[] },
  log: { info(obj: object, msg: string): void },
): Promise<TakenOver> {
  let path = `${socket}.handover-${process.pid}`;
  if (Buffer.byteLength(path) > 107) path = `/tmp/vxlan-router.handover-${process.pid}`;
  let listenFd: number;
  try {
    listenFd = native.listenHandover(path);
  } catch (err) {
    throw toRouterError(err);
  }
  let fds: number[] = [];
  try {
    const req: TakeoverRequest = { v: PROTOCOL_VERSION, method: 'takeover', handover: HANDOVER_VERSION, software: SOFTWARE, pid: process.pid, path, ...want, networks: [...want.networks] };
    const talk = await requestTakeover(socket, req);
    const state = talk.state;
    // From `go` on the old router pauses: the fds are waited for right here (the JS thread blocks, briefly), and the
    // caller starts the engine on them before it yields to anything else.
    const asked = process.hrtime.bigint();
    talk.go();
    let got: { fds: number[]; header: string };
    try {
      got = native.acceptFds(listenFd, 5000);
    } catch (err) {
      talk.close();
      const why = await Promise.race([talk.done, new Promise<undefined>((r) => setTimeout(() => r(undefined), 500))]);
      throw why instanceof VxlanRouterError ? why : toRouterError(err);
    }
    void talk.done.then((d) => log.info(d instanceof VxlanRouterError ? { error: d.message } : { oldPauseUs: d.pauseUs }, 'the old router ended the handover'));
    fds = got.fds;
    let header: FdHeader;
    try {
      header = fdHeaderSchema.parse(JSON.parse(got.header));
    } catch (err) {
      throw handoverError(`the handed-over fds came with a header this version cannot read: ${(err as Error).message}`);
    }
    const at = (i: number): number => {
      const fd = fds[i];
      if (fd === undefined) throw handoverError(`the handover names fd #${i}, but ${fds.length} arrived`);
      return fd;
    };
    const taps = new Map<number, { fd: number; name: string; vnetHdr: boolean }>();
    for (const w of want.networks) {
      const t = header.taps.find((x) => x.vni === w.vni);
      if (t === undefined) continue; // a network the old router did not serve: the caller opens its TAP
      const fd = at(t.index);
      let info: { name: string; vnetHdr: boolean };
      try {
        info = native.inspectTap(fd);
      } catch (err) {
        throw toRouterError(err);
      }
      taps.set(w.vni, { fd, ...info });
    }
    const rxFd = at(header.rx);
    const used = new Set([rxFd, ...[...taps.values()].map((t) => t.fd)]);
    for (const fd of fds) if (!used.has(fd)) native.closeFd(fd);
    log.info({ oldPid: state.pid, oldSoftware: state.software, fdsAfterUs: Number((process.hrtime.bigint() - asked) / 1000n) }, 'handover received');
    return { state, rxFd, taps };
  } catch (err) {
    for (const fd of fds) native.closeFd(fd);
    throw err;
  } finally {
    native.closeFd(listenFd);
    rmSync(path, { force: true });
  }
}
