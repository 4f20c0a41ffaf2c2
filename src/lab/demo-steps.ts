/** How `npm run demo` prints: a line per step, with a spinner and the elapsed time while it runs on a terminal. */

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export const out = (s: string): boolean => process.stdout.write(`${s}\n`);

/** One step: a spinner with the elapsed time while it runs (on a terminal), then ✓ or ✗ with what it found. */
export async function step<T>(title: string, work: () => Promise<T>, detail?: (r: T) => string): Promise<T> {
  const started = Date.now();
  const tty = process.stdout.isTTY === true;
  let frame = 0;
  const spin = tty
    ? setInterval(() => process.stdout.write(`\r\x1b[K  ${SPINNER[frame++ % SPINNER.length]} ${title} (${((Date.now() - started) / 1000).toFixed(1)} s)`), 100)
    : undefined;
  const done = (mark: string, text: string): boolean => process.stdout.write(`${tty ? '\r\x1b[K' : ''}  ${mark} ${text}\n`);
  try {
    const r = await work();
    clearInterval(spin);
    done('✓', `${title}${detail ? `: ${detail(r)}` : ''} (${Date.now() - started} ms)`);
    return r;
  } catch (err) {
    clearInterval(spin);
    done('✗', title);
    throw err;
  }
}
