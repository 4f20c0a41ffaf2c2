/** Polling instead of sleeping a guessed time: the one wait every lab, test and benchmark uses. */

/** Polls `cond` until it holds; rejects after `timeoutMs`, naming `what` it waited for. */
export async function waitFor(cond: () => boolean | Promise<boolean>, opts: { timeoutMs: number; intervalMs?: number; what?: string }): Promise<void> {
  const end = Date.now() + opts.timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what ?? 'a condition'}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}
