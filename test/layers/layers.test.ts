/**
 * The layers of src/ hold (.dependency-cruiser.cjs: imports point one way, folders entered through index.ts, no
 * cycles that run code), checked with dependency-cruiser over the real tree; and the rules bite: a small tree with
 * the data path importing the control plane is refused.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CONFIG = join(root, '.dependency-cruiser.cjs');
const DEPCRUISE = join(root, 'node_modules/.bin/depcruise');

interface Violation {
  readonly from: string;
  readonly to: string;
  readonly rule: { readonly name: string };
}

function cruise(cwd: string): Promise<{ violations: Violation[]; modules: number }> {
  return new Promise((resolve, reject) => {
    execFile(DEPCRUISE, ['src', '--config', CONFIG, '--output-type', 'json'], { cwd, maxBuffer: 64 << 20, timeout: 60_000 }, (err, stdout) => {
      // depcruise exits non-zero when it finds violations: the JSON on stdout says which.
      try {
        const out = JSON.parse(stdout) as { summary: { violations: Violation[]; totalCruised: number } };
        resolve({ violations: out.summary.violations, modules: out.summary.totalCruised });
      } catch {
        reject(err ?? new Error(`depcruise printed no JSON: ${stdout.slice(0, 500)}`));
      }
    });
  });
}

t.test('src/ keeps its layers', async (t) => {
  const { violations, modules } = await cruise(root);
  t.ok(modules > 50, `${modules} modules cruised`);
  t.same(violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`), [], 'no violations');
});

t.test('the rules bite', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-layers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(root, 'tsconfig.json'), join(dir, 'tsconfig.json'));
  const file = (path: string, text: string): void => {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  };
  file('src/dataplane/index.ts', "export { engine } from './engine.js';\n");
  file('src/dataplane/engine.ts', "import { plane } from '../control/index.js';\nexport const engine = plane + 1;\n");
  file('src/control/index.ts', "export { plane } from './plane.js';\n");
  file('src/control/plane.ts', "import { table } from '../fdb/table.js';\nexport const plane = table;\n");
  file('src/fdb/index.ts', "export { table } from './table.js';\n");
  file('src/fdb/table.ts', 'export const table = 1;\n');
  const rules = (await cruise(dir)).violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();
  t.same(rules, [
    'dataplane-imports-only-below: src/dataplane/engine.ts → src/control/index.ts',
    'only-agent-joins-control-and-dataplane: src/dataplane/engine.ts → src/control/index.ts',
    'through-index: src/control/plane.ts → src/fdb/table.ts',
  ]);
});
