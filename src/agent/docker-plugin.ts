/**
 * Docker's plugin protocol (issue 16): the HTTP server dockerd finds at /run/docker/plugins/vxlan-router.sock, the
 * shapes of its requests, and how answers and errors go back. What the calls do is the driver's business
 * (`NetworkDriver` and `IpamDriver` below); this file only decodes, routes and encodes.
 *
 * Protocol facts this follows (moby's libnetwork/docs/remote.md and ipam.md, and its plugins client):
 * - every call is a POST of JSON to `/<Api>.<Method>`; an unknown path must be a 404 (dockerd then treats the
 *   method as not implemented rather than failed);
 * - a request that cannot be decoded gets an HTTP error status; dockerd's client reads `Err` from such a body;
 * - a decoded request the driver cannot carry out gets 200 with `{"Err": "…"}` from the network driver but
 *   `{"Error": "…"}` from the IPAM driver (their response types differ); the text lands in dockerd's log, so it
 *   never carries secrets;
 * - dockerd waits on every answer (and holds its own locks meanwhile): a handler never calls back into dockerd.
 *
 * Written on node:http rather than a web framework: eleven fixed routes, one body shape each, no middleware.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { z } from 'zod';
import { VxlanRouterError } from '../errors.js';

export { DEFAULT_PLUGIN_SOCKET } from './control-protocol.js';

/** The media type Docker's plugin client sends and expects. */
export const PLUGIN_MEDIA_TYPE = 'application/vnd.docker.plugins.v1.2+json';
/** dockerd's bodies are a few hundred bytes; a larger one is refused before it is buffered whole. */
export const MAX_PLUGIN_BODY = 64 * 1024;

/** A call the driver refuses, with a message for dockerd's log and the user's terminal (no secrets). */
export class PluginCallError extends VxlanRouterError {
  constructor(message: string, hint?: string) {
    super('E_DOCKER', message, hint === undefined ? {} : { hint });
  }
}

// Request shapes: only the fields the driver reads are checked; dockerd adds fields across versions, so unknown
// ones pass (zod objects strip them).
const id = z.string().min(1).max(256);
const stringMap = z.record(z.string(), z.string());
const ipamData = z.object({
  AddressSpace: z.string().optional(),
  Pool: z.string(),
  Gateway: z.string().optional(),
  AuxAddresses: stringMap.nullish(),
});

export const createNetworkRequest = z.object({
  NetworkID: id,
  Options: z.record(z.string(), z.unknown()).nullish(),
  IPv4Data: z.array(ipamData).nullish(),
  IPv6Data: z.array(ipamData).nullish(),
});
export type CreateNetworkRequest = z.infer<typeof createNetworkRequest>;

export const networkRequest = z.object({ NetworkID: id });
export type NetworkRequest = z.infer<typeof networkRequest>;

export const endpointRequest = z.object({ NetworkID: id, EndpointID: id });
export type EndpointRequest = z.infer<typeof endpointRequest>;

export const createEndpointRequest = endpointRequest.extend({
  Options: z.record(z.string(), z.unknown()).nullish(),
  Interface: z.object({ Address: z.string().optional(), AddressIPv6: z.string().optional(), MacAddress: z.string().optional() }).nullish(),
});
export type CreateEndpointRequest = z.infer<typeof createEndpointRequest>;

export const joinRequest = endpointRequest.extend({ SandboxKey: z.string(), Options: z.record(z.string(), z.unknown()).nullish() });
export type JoinRequest = z.infer<typeof joinRequest>;

export const requestPoolRequest = z.object({
  AddressSpace: z.string(),
  Pool: z.string().optional(),
  SubPool: z.string().optional(),
  Options: stringMap.nullish(),
  V6: z.boolean().optional(),
});
export type RequestPoolRequest = z.infer<typeof requestPoolRequest>;

export const poolRequest = z.object({ PoolID: id });
export type PoolRequest = z.infer<typeof poolRequest>;

export const requestAddressRequest = z.object({ PoolID: id, Address: z.string().optional(), Options: stringMap.nullish() });
export type RequestAddressRequest = z.infer<typeof requestAddressRequest>;

export const releaseAddressRequest = z.object({ PoolID: id, Address: z.string() });
export type ReleaseAddressRequest = z.infer<typeof releaseAddressRequest>;

/** The option dockerd sets on the RequestAddress call that asks for a network's gateway. */
export const GATEWAY_REQUEST_OPTION = ['RequestAddressType', 'com.docker.network.gateway'] as const;

export interface CreateEndpointResponse {
  /** Empty when dockerd gave the interface (it must not be given back, or dockerd rolls back). */
  readonly Interface?: { readonly Address?: string; readonly AddressIPv6?: string; readonly MacAddress?: string };
}

export interface JoinResponse {
  readonly InterfaceName: { readonly SrcName: string; readonly DstPrefix: string };
  /** Left out on purpose by our driver: with no gateway, dockerd adds docker_gwbridge (outbound NAT and `-p`). */
  readonly Gateway?: string;
  readonly StaticRoutes?: readonly { Destination: string; RouteType: 0 | 1; NextHop?: string }[];
  readonly DisableGatewayService?: boolean;
}

/** What the network driver does for dockerd (src/agent/docker-driver.ts). */
export interface NetworkDriver {
  createNetwork(req: CreateNetworkRequest): Promise<void>;
  deleteNetwork(req: NetworkRequest): Promise<void>;
  createEndpoint(req: CreateEndpointRequest): Promise<CreateEndpointResponse>;
  deleteEndpoint(req: EndpointRequest): Promise<void>;
  join(req: JoinRequest): Promise<JoinResponse>;
  leave(req: EndpointRequest): Promise<void>;
}

/** What the IPAM driver does for dockerd. */
export interface IpamDriver {
  requestPool(req: RequestPoolRequest): Promise<{ PoolID: string; Pool: string; Data?: Record<string, string> }>;
  releasePool(req: PoolRequest): Promise<void>;
  requestAddress(req: RequestAddressRequest): Promise<{ Address: string; Data?: Record<string, string> }>;
  releaseAddress(req: ReleaseAddressRequest): Promise<void>;
}

/** Which error field a route's answers use. */
type ErrorField = 'Err' | 'Error';

interface Route {
  readonly errorField: ErrorField;
  /** Decodes the body (throws a ZodError) and carries the call out; resolves to the answer's body. */
  readonly call: (body: unknown) => Promise<object>;
}

/** Calls that need no driver state: the handshake, the capabilities, and notifications we have no use for. */
function fixedRoutes(): Record<string, Route> {
  const answer = (body: object, errorField: ErrorField = 'Err'): Route => ({ errorField, call: () => Promise.resolve(body) });
  return {
    '/Plugin.Activate': answer({ Implements: ['NetworkDriver', 'IpamDriver'] }),
    // local: dockerd keeps the network to itself (no Swarm store); global connectivity: its endpoints reach other hosts.
    '/NetworkDriver.GetCapabilities': answer({ Scope: 'local', ConnectivityScope: 'global' }),
    '/NetworkDriver.EndpointOperInfo': answer({ Value: {} }),
    '/NetworkDriver.DiscoverNew': answer({}),
    '/NetworkDriver.DiscoverDelete': answer({}),
    // Outbound NAT and `-p` live on docker_gwbridge, which dockerd programs itself (Join gives no gateway).
    '/NetworkDriver.ProgramExternalConnectivity': answer({}),
    '/NetworkDriver.RevokeExternalConnectivity': answer({}),
    // Allocations live in the router's memory: dockerd replays pools and addresses after it restarts.
    '/IpamDriver.GetCapabilities': answer({ RequiresMACAddress: false, RequiresRequestReplay: true }, 'Error'),
    '/IpamDriver.GetDefaultAddressSpaces': answer({ LocalDefaultAddressSpace: 'vxlan-router', GlobalDefaultAddressSpace: 'vxlan-router' }, 'Error'),
  };
}

function route<S extends z.ZodType, R>(errorField: ErrorField, schema: S, f: (req: z.infer<S>) => Promise<R>): Route {
  return { errorField, call: async (body) => (await f(schema.parse(body))) ?? {} };
}

/** Every path dockerd may POST, to the driver method that answers it. */
export function pluginRoutes(network: NetworkDriver, ipam: IpamDriver): ReadonlyMap<string, Route> {
  return new Map(
    Object.entries({
      ...fixedRoutes(),
      '/NetworkDriver.CreateNetwork': route('Err', createNetworkRequest, (r) => network.createNetwork(r)),
      '/NetworkDriver.DeleteNetwork': route('Err', networkRequest, (r) => network.deleteNetwork(r)),
      '/NetworkDriver.CreateEndpoint': route('Err', createEndpointRequest, (r) => network.createEndpoint(r)),
      '/NetworkDriver.DeleteEndpoint': route('Err', endpointRequest, (r) => network.deleteEndpoint(r)),
      '/NetworkDriver.Join': route('Err', joinRequest, (r) => network.join(r)),
      '/NetworkDriver.Leave': route('Err', endpointRequest, (r) => network.leave(r)),
      '/IpamDriver.RequestPool': route('Error', requestPoolRequest, (r) => ipam.requestPool(r)),
      '/IpamDriver.ReleasePool': route('Error', poolRequest, (r) => ipam.releasePool(r)),
      '/IpamDriver.RequestAddress': route('Error', requestAddressRequest, (r) => ipam.requestAddress(r)),
      '/IpamDriver.ReleaseAddress': route('Error', releaseAddressRequest, (r) => ipam.releaseAddress(r)),
    }),
  );
}

export interface PluginAnswer {
  readonly status: number;
  readonly body: object;
}

/**
 * One call, from path and raw body to status and answer: 404 for a path we do not serve, 400 for a body that does
 * not decode, 200 with the route's error field for a call the driver refuses. Never throws.
 */
export async function answerPluginCall(routes: ReadonlyMap<string, Route>, path: string, raw: string, onError?: (path: string, err: unknown) => void): Promise<PluginAnswer> {
  const r = routes.get(path);
  if (r === undefined) return { status: 404, body: { Err: `${path} is not implemented by vxlan-router` } };
  let body: unknown = {};
  try {
    if (raw.trim() !== '') body = JSON.parse(raw);
  } catch {
    return { status: 400, body: { Err: `${path}: the body is not JSON` } };
  }
  try {
    return { status: 200, body: await r.call(body ?? {}) };
  } catch (err) {
    if (err instanceof z.ZodError) {
      const first = err.issues[0];
      return { status: 400, body: { Err: `${path}: ${first?.path.join('.') || 'body'}: ${first?.message ?? 'does not decode'}` } };
    }
    // A refusal is an answer for the user (dockerd prints it); anything else is a bug, for the router's log too.
    if (!(err instanceof VxlanRouterError)) onError?.(path, err);
    const message = err instanceof VxlanRouterError ? err.describe() : `internal error in vxlan-router (${err instanceof Error ? err.message : String(err)})`;
    return { status: 200, body: { [r.errorField]: message } };
  }
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_PLUGIN_BODY) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The plugin's HTTP server (not yet listening: the caller listens on the socket path and closes it). */
export function pluginServer(routes: ReadonlyMap<string, Route>, onError?: (path: string, err: unknown) => void): Server {
  const send = (res: ServerResponse, a: PluginAnswer): void => {
    const text = JSON.stringify(a.body);
    res.writeHead(a.status, { 'content-type': PLUGIN_MEDIA_TYPE, 'content-length': Buffer.byteLength(text) }).end(text);
  };
  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      send(res, { status: 405, body: { Err: 'the plugin protocol is POST only' } });
      return;
    }
    readBody(req).then(
      async (raw) => send(res, raw === undefined ? { status: 413, body: { Err: `body larger than ${MAX_PLUGIN_BODY} bytes` } } : await answerPluginCall(routes, req.url ?? '', raw, onError)),
      () => res.destroy(),
    );
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  return server;
}
