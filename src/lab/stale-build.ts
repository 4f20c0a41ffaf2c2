/**
 * Whether the build that labs run is older than its sources. A lab router runs dist/cli.js and the native addon, not
 * src/: with a stale build it runs old code, and a test then waits for a line or a behaviour that never comes (minutes,
 * not a failure). Tests that run the build check this first and fail at once with the command that fixes it.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository, from src/lab (tests under tap) or dist/lab (demo, benchmarks): two levels up. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function mtime(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Every file under `dir` (none when it does not exist: an install without sources has nothing to compare). */
function* files(dir: string): Generator<string> {
  if (mtime(dir) === undefined) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (e.isFile()) yield p;
  }
}

/** The first source newer than what was built from it (or built from nothing), as a message; undefined when fresh. */
export function staleBuildReason(root = ROOT): string | undefined {
  const src = join(root, 'src');
  for (const f of files(src)) {
    if (!f.endsWith('.ts') || f.endsWith('.d.ts')) continue;
    const out = join(root, 'dist', relative(src, f)).replace(/\.ts$/, '.js');
    const built = mtime(out);
    if (built === undefined || (mtime(f) ?? 0) > built)
      return `dist/ is older than src/ (${relative(root, f)} ${built === undefined ? 'has no dist/ output' : 'changed after it was compiled'}): run npm run build:ts`;
  }
  const addon = mtime(join(root, 'native/build/Release/vxlan_native.node'));
  for (const f of [join(root, 'native/binding.gyp'), ...files(join(root, 'native/src'))]) {
    const changed = mtime(f);
    if (changed === undefined) continue;
    if (addon === undefined || changed > addon)
      return `the native addon is older than its sources (${relative(root, f)}${addon === undefined ? ': no build' : ' changed after it was built'}): run npm run build:native`;
  }
  return undefined;
}

let checked: string | undefined | null = null;

/** staleBuildReason() of this repository, looked at once per process (a test file starts many routers). */
export function staleBuild(): string | undefined {
  if (checked === null) checked = staleBuildReason();
  return checked;
}
