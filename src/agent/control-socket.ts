/**
 * The running router's local control socket (Unix, mode 0600: root only). Each connection carries one request and
 * gets one answer (control-protocol.ts); answers are built from the router at that moment. A socket file left by a
 * crashed router is replaced; one that a live router still answers on is an error (kind 'socket-taken') with the fix.
 */
import { chmodSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { describeError, VxlanRouterError } from '../errors.js';
import type { DeepReadonly } from '../fdb/index.js';
import {
  encodeFrame,
  FrameReader,
  MAX_REQUEST,
  requestSchema,
  type Method,
  type Result,
  type WhyQuery,
} from './control-protocol.js';

/** What the socket answers with. */
/** What the socket answers with: one function per method, called at the moment of asking. */
export type ControlSource = { readonly [M in Exclude<Method, 'why'>]: () => DeepReadonly<Result<M>> } & {
  readonly why: (q: WhyQuery) => DeepReadonly<Result<'why'>>;
};

/**
 * A takeover (handover.ts) is a conversation, not one request and one answer: the handler gets the request and the
 * connection's frames in both directions; `end` writes the last frame and calls `after` once it is out (the old
 * router shuts down only then, so the answer is never cut off).
 */
export interface TakeoverSession {
  send(value: unknown): void;
  /** The client's next frame, or undefined when it went away or stayed silent for `timeoutMs`. */
  next(timeoutMs: number): Promise<unknown>;
  end(value: unknown, after?: () => void): void;
}
export type TakeoverHandler = (request: unknown, session: TakeoverSession) => void;

function takeoverSession(conn: Socket): { session: TakeoverSession; push: (frames: unknown[]) => void } {
  const queued: unknown[] = [];
  let waiting: ((v: unknown) => void) | undefined;
  const push = (frames: unknown[]): void => {
    queued.push(...frames);
    if (waiting !== undefined && queued.length > 0) waiting(queued.shift());
  };
  conn.once('close', () => waiting?.(undefined));
  return {
    push,
    session: {
      send: (v) => conn.write(encodeFrame({ ok: true, result: v })),
      next: (timeoutMs) =>
        new Promise((resolve) => {
          if (queued.length > 0) return resolve(queued.shift());
          if (conn.destroyed) return resolve(undefined);
          const timer = setTimeout(() => done(undefined), timeoutMs);
          const done = (v: unknown): void => {
            clearTimeout(timer);
            waiting = undefined;
            resolve(v);
          };
          waiting = done;
        }),
      end: (v, after) => conn.end(encodeFrame(v), after),
    },
  };
}

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

/** True when something accepts connections on `path` (a live router). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function claim(path: string, flag: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new VxlanRouterError('E_CONTROL', `${path} exists and is not a socket`, { hint: `remove it, or pass ${flag} <path>`, kind: 'not-a-socket' });
  if (await answers(path)) {
    throw new VxlanRouterError('E_CONTROL', `another vxlan-router answers on ${path}`, { hint: `stop it, or give this one its own ${flag} <path>`, kind: 'socket-taken' });
  }
  rmSync(path, { force: true }); // left by a router that died without cleaning up
}

/**
 * Listens with `server` on the Unix socket `path`, root only, replacing one left by a crashed router (`flag` is the
 * option that names the path, for the error's fix). `onError` hears what goes wrong after it listens. `close` ends
 * open connections at once, so a client that keeps one open cannot hold up a stop.
 */
export async function listenUnix(path: string, server: Server, flag: string, onError: (err: Error) => void): Promise<ControlServer> {
  await claim(path, flag);
  const open = new Set<Socket>();
  server.on('connection', (conn: Socket) => {
    open.add(conn);
    conn.once('close', () => open.delete(conn));
  });
  // Root only from the start: the socket is created under a umask that leaves no access to group or others.
  const mask = process.umask(0o077);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new VxlanRouterError('E_CONTROL', `cannot serve ${path}: ${err.message}`, { cause: err })));
      server.listen(path, resolve);
    });
  } finally {
    process.umask(mask);
  }
  chmodSync(path, 0o600);
  server.on('error', onError);
  let closed = false;
  return {
    path,
    close: async () => {
      if (closed) return;
      closed = true;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const conn of open) conn.destroy();
      await done;
      rmSync(path, { force: true });
    },
  };
}

function handle(conn: Socket, source: ControlSource, takeover: TakeoverHandler | undefined): void {
  const reader = new FrameReader(MAX_REQUEST);
  let conversation: ((frames: unknown[]) => void) | undefined;
  conn.on('error', () => conn.destroy()); // a client that went away: nothing to do
  conn.setTimeout(10_000, () => conn.destroy());
  conn.on('data', (chunk: Buffer) => {
    let frames: unknown[];
    try {
      frames = reader.push(chunk);
    } catch (err) {
      conn.end(encodeFrame({ ok: false, error: (err as Error).message }));
      return;
    }
    if (conversation !== undefined) return conversation(frames);
    if (frames.length === 0) return;
    const first = frames[0];
    if (takeover !== undefined && typeof first === 'object' && first !== null && (first as { method?: unknown }).method === 'takeover') {
      const { session, push } = takeoverSession(conn);
      conversation = push;
      push(frames.slice(1));
      takeover(first, session);
      return;
    }
    const req = requestSchema.safeParse(first);
    if (!req.success) {
      conn.end(encodeFrame({ ok: false, error: `bad request: ${req.error.issues.map((i) => i.message).join('; ')}` }));
      return;
    }
    try {
      const { method, query } = req.data;
      if (method === 'why' && query === undefined) throw new Error('needs a target (a MAC or an IP address)');
      conn.end(encodeFrame({ ok: true, result: method === 'why' ? source.why(query!) : source[method]() }));
    } catch (err) {
      conn.end(encodeFrame({ ok: false, error: `${req.data.method} failed: ${describeError(err)}` }));
    }
  });
}

/**
 * Serves `source` on `path` until closed. `onError` hears what goes wrong after the socket listens (the router logs
 * it and carries on: the data path does not depend on this socket). `close` ends open connections at once, so a
 * client that keeps one open cannot hold up a stop.
 */
export function serveControl(
  path: string,
  source: ControlSource,
  onError: (err: Error) => void = () => undefined,
  takeover?: TakeoverHandler,
): Promise<ControlServer> {
  return listenUnix(path, createServer((conn) => handle(conn, source, takeover)), '--socket', onError);
}
