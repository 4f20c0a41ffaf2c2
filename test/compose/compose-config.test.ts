/**
 * docker-compose.yml stays a valid compose file (`docker-compose config -q`, no daemon needed), and the check
 * catches a broken one. The lab itself runs in test/compose/run-lab.sh (root, minutes: not in CI).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');

function compose(file: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  // --project-directory: a copy elsewhere still resolves the build context (.) to the repository.
  const r = spawnSync('docker-compose', ['-f', file, '--project-directory', ROOT, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

const installed = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;
const skip = installed ? false : 'docker-compose is not installed: run `bash scripts/setup.sh` as root (it installs Debian\'s docker-compose)';

t.test('docker-compose.yml is valid', { skip }, async (t) => {
  const r = compose(COMPOSE_FILE, ['config', '-q']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr.trim(), '', 'no warnings');
  const services = compose(COMPOSE_FILE, ['config', '--services']);
  t.same(services.stdout.trim().split('\n').sort(), ['etcd', 'host1', 'host2', 'host3']);
});

t.test('a broken copy fails the same check', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-compose-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const good = readFileSync(COMPOSE_FILE, 'utf8');
  const broken = {
    // A key compose does not know, in a service.
    'unknown-key.yml': good.replace('  cap_add: [NET_ADMIN, SYS_ADMIN]\n', '  cap_add: [NET_ADMIN, SYS_ADMIN]\n  privilegd: true\n'),
    // A boolean that is not one.
    'bad-type.yml': good.replace('internal: true', 'internal: maybe'),
    // Not YAML any more (a tab for indentation).
    'not-yaml.yml': good.replace('\nservices:\n  etcd:', '\nservices:\n\tetcd:'),
  };
  for (const [name, text] of Object.entries(broken)) {
    t.not(text, good, `${name} differs from the original`);
    const file = join(dir, name);
    writeFileSync(file, text);
    const r = compose(file, ['config', '-q']);
    t.not(r.status, 0, `${name} is refused`);
    t.match(r.stderr, /\S/, `${name}: compose says why`);
  }
});
