/**
 * Structured logs (pino, JSON lines on stderr; stdout stays for the lines scripts read). Nothing on the data path
 * logs per packet; errors that can repeat (etcd going away and coming back) go through `RateLimited`.
 */
import { pino, type Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type { Logger };

export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
}

/** A logger that says a repeated message at most once per `windowMs` per key, with how many it held back. */
export class RateLimited {
  private readonly last = new Map<string, { at: number; held: number }>();

  constructor(
    private readonly log: Logger,
    private readonly windowMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(key: string, msg: string, fields: Record<string, unknown> = {}): void {
    const t = this.now();
    const seen = this.last.get(key);
    if (seen !== undefined && t - seen.at < this.windowMs) {
      seen.held++;
      return;
    }
    this.last.set(key, { at: t, held: 0 });
    this.log.warn({ ...fields, ...(seen?.held ? { repeatedSinceLast: seen.held } : {}) }, msg);
  }
}

/** A logger that drops everything (library use and tests). */
export const silentLogger: Logger = pino({ level: 'silent' });
