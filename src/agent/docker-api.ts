/**
 * The Docker Engine API calls the router makes: plain HTTP over dockerd's local Unix socket, written with node:http
 * rather than dockerode (which brings ssh2 and an optional native build for them). Used by `docker-network create`
 * and by `up --docker`'s sync (docker-sync.ts); never by a plugin handler.
 */
import { request } from 'node:http';
import { VxlanRouterError } from '../errors.js';

export interface DockerReply {
  readonly status: number;
  readonly body: unknown;
}

/** One call to the Docker Engine API on a Unix socket; rejects with E_DOCKER when dockerd is not there. */
export function dockerCall(socketPath: string, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<DockerReply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath, method, path, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let json: unknown = text;
        try {
          json = text === '' ? null : JSON.parse(text);
        } catch {
          /* a plain-text error message */
        }
        resolve({ status: res.statusCode ?? 0, body: json });
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', (err) => reject(new VxlanRouterError('E_DOCKER', `cannot reach dockerd at ${socketPath} (${err.message})`, { cause: err, hint: 'is Docker running? (--docker-socket names another socket)' })));
    req.end(payload);
  });
}

export const messageOf = (r: DockerReply): string => (typeof r.body === 'object' && r.body !== null && 'message' in r.body ? String(r.body.message) : JSON.stringify(r.body));

/** Linux limits interface names to 15 bytes: `vxr-` and as much of the network's name as fits. */
export function defaultDockerBridge(network: string): string {
  return `vxr-${network}`.slice(0, 15);
}

