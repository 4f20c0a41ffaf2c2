/** `npm run demo` in its quick mode: the script users run first must pass, print what it did, and leave nothing. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { labSkipReason } from '../../src/lab/netns.js';

t.test('demo --quick', { skip: labSkipReason() ?? false }, async (t) => {
  const demo = fileURLToPath(new URL('../../dist/lab/demo.js', import.meta.url));
  const r = spawnSync(process.execPath, [demo, '--quick'], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, 'demo exits 0');
  if (r.status !== 0) t.comment(r.stdout + r.stderr);
  t.match(r.stdout, /✓ ping c1 → c2 \(198\.18\.0\.2\): 0% loss/);
  t.match(r.stdout, /✓ TCP transfer of 20 MB c1 → c2, SHA-256 checked: intact/);
  t.match(r.stdout, /demo: every check passed/);
  // The demo's lab names its namespaces vxr<demo pid><n>-…; other labs may run beside it.
  const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(`vxr${r.pid}`));
  t.same(left, [], 'no namespace left behind');
});
