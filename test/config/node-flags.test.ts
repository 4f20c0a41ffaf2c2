/**
 * Every way the router is started passes NODE_FLAGS to node (src/agent/control-protocol.ts says why: a bounded V8
 * young generation, so that RSS does not creep up for many minutes under load): the systemd unit's ExecStart, the
 * Dockerfile's `vxlan-router` wrapper, the #! line of the `vxlan-router` bin, and the lab (Lab.startRouter).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { NODE_FLAGS } from '../../src/agent/control-protocol.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
/** The words between `node` and `dist/cli.js` on a command line. */
const flagsOf = (line: string): string[] => {
  const m = /\bnode((?: +-[^ ]+)*) +\S*dist\/cli\.js\b/.exec(line);
  if (m === null) throw new Error(`no "node … dist/cli.js" in: ${line}`);
  return m[1]!.trim().split(/ +/).filter(Boolean);
};

t.test('the launchers pass NODE_FLAGS', async (t) => {
  t.same(NODE_FLAGS, ['--max-semi-space-size=1'], 'a 1 MiB semi-space');
  t.same(flagsOf(/^ExecStart=(.*)$/m.exec(read('config/vxlan-router.service'))![1]!), NODE_FLAGS, 'config/vxlan-router.service ExecStart');
  t.same(flagsOf(/exec \/opt\/vxlan-router\/bin\/node[^\n]*/.exec(read('Dockerfile'))![0]), NODE_FLAGS, "the Dockerfile's vxlan-router wrapper");
  t.equal(read('src/cli.ts').split('\n')[0], `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`, 'the #! line of the bin (tsc keeps it in dist/cli.js)');
  t.match(read('src/lab/lab.ts'), /this\.spawn\(host\.ns, process\.execPath, \[\.\.\.NODE_FLAGS, (\.\.\.\(opts\.nodeFlags \?\? \[\]\), )?\.\.\.args\]/, 'Lab.startRouter');
});
