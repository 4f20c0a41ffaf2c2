/** The data path of a starting router: its options from the config, built on the TAPs tap-setup.ts opened, started. */
import type { RouterConfig } from '../config/index.js';
import { JsEngine, NativeEngine, type Engine, type EngineOptions, type NativeAddon, type VniTap } from '../dataplane/index.js';
import type { MssClamp } from '../packet/index.js';
import type { Underlay } from './preflight.js';
import type { Handed, OpenedTaps } from './tap-setup.js';

/** The engine's options: the config's, the underlay's MTU, the TAPs, and what the router taken over handed on. */
export function engineOptions(config: RouterConfig, underlayMtu: number, taps: readonly VniTap[], clampMss: MssClamp | undefined, handed: Handed | undefined): EngineOptions {
  return {
    local: config.local,
    port: config.port,
    underlayMtu,
    learning: config.learning,
    agingMs: config.agingSeconds * 1000,
    learnMaxPerPeer: config.learnMaxPerPeer,
    learnMax: config.learnMax,
    sourceCheck: config.sourceCheck,
    maxLocalMacs: config.maxLocalMacs,
    udpGso: config.offloads.includes('gso'),
    udpGro: config.offloads.includes('gro'),
    arpSuppression: config.arpSuppression,
    ...(clampMss !== undefined ? { clampMss } : {}),
    loop: config.loop,
    networks: [...taps],
    ...(handed !== undefined ? { inherited: { rxFd: handed.rxFd, learned: handed.state.learned } } : {}),
  };
}

/**
 * Builds the config's engine on `opened`'s TAPs, which it owns from then on (in `owned`'s place of them), and starts
 * it; after a takeover it forwards with the old router's table from its first frame. `startUs`: how long start took.
 */
export async function startEngine(
  config: RouterConfig,
  native: NativeAddon,
  underlay: Underlay,
  opened: OpenedTaps,
  clampMss: MssClamp | undefined,
): Promise<{ engine: Engine; startUs: number }> {
  const { handed } = opened;
  const options = engineOptions(config, underlay.mtu, opened.taps, clampMss, handed);
  const engine: Engine = config.engine === 'native' ? new NativeEngine(options, native) : new JsEngine(options, native);
  opened.passTo(engine);
  if (handed !== undefined) engine.applyTable(handed.state.table); // forwards with the old router's table from its first frame
  const started = process.hrtime.bigint();
  await engine.start();
  return { engine, startUs: Number((process.hrtime.bigint() - started) / 1000n) };
}
