/** The CLI's side of the control socket: find the running router's socket, ask it one thing, check the answer. */
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import {
  encodeFrame,
  FrameReader,
  PROTOCOL_VERSION,
  responseSchema,
  RESULT_SCHEMAS,
  type Method,
  type Result,
  type WhyQuery,
} from '../agent/control-protocol.js';
import { defaultRunDir } from '../config/index.js';
import { VxlanRouterError } from '../errors.js';

/**
 * `explicit`, or the only socket in this network namespace's run dir (config/paths.ts); an error that says what to
 * do when there is none or several.
 */
export function findSocket(explicit: string | undefined, dir = defaultRunDir()): string {
  if (explicit !== undefined) return explicit;
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.sock'));
  } catch {
    /* no directory: no router has run */
  }
  if (names.length === 1) return join(dir, names[0]!);
  if (names.length === 0) throw new VxlanRouterError('E_CONTROL', `no running vxlan-router (no socket in ${dir})`, { hint: 'start one with `vxlan-router up`, or pass --socket <path>', kind: 'no-router' });
  throw new VxlanRouterError('E_CONTROL', `several routers run here (${names.join(', ')} in ${dir})`, { hint: 'pick one with --socket <path>', kind: 'several-routers' });
}

export function ask<M extends Method>(path: string, method: M, timeoutMs = 5000, query?: WhyQuery): Promise<Result<M>> {
  return new Promise((resolve, reject) => {
    const fail = (message: string, cause?: unknown): void => {
      sock.destroy();
      reject(new VxlanRouterError('E_CONTROL', message, cause === undefined ? {} : { cause }));
    };
    const reader = new FrameReader();
    const sock = connect(path);
    sock.setTimeout(timeoutMs, () => fail(`no answer from ${path} in ${timeoutMs} ms`));
    sock.once('connect', () => sock.write(encodeFrame({ v: PROTOCOL_VERSION, method, ...(query === undefined ? {} : { query }) })));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'no router answers there (not running?)' : err.message;
      fail(`cannot reach ${path}: ${why}`, err);
    });
    sock.on('data', (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = reader.push(chunk);
      } catch (err) {
        return fail(`${path}: ${(err as Error).message}`, err);
      }
      if (frames.length === 0) return;
      sock.destroy();
      const res = responseSchema.safeParse(frames[0]);
      if (!res.success) return fail(`${path}: not a vxlan-router answer`);
      if (!res.data.ok) return fail(`the router refused: ${res.data.error}`);
      const result = RESULT_SCHEMAS[method].safeParse(res.data.result);
      if (!result.success) return fail(`${path}: the router's ${method} answer does not match this CLI's version (${result.error.issues[0]?.message ?? ''})`);
      resolve(result.data as Result<M>);
    });
  });
}
