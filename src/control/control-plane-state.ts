/**
 * The control plane's state as `status` and the logs show it: starting, connected, or degraded since when, on an
 * injected clock; and the backoff of the registry's background retries. Pure, so the state machine is tested on a
 * fake clock without etcd.
 */

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
