/**
 * The etcd client (etcd3, grpc-js, protobufjs: ~30 MiB) is loaded when a registry is opened, never by importing the
 * control plane: a router on static peers does not carry it. Checked on the built modules in a fresh process.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const dist = (f: string): string => fileURLToPath(new URL(`../../dist/control/${f}`, import.meta.url));

/** Whether etcd3 is loaded after importing `modules`, in a fresh process. */
function loadsEtcd3(...modules: string[]): boolean {
  const script = `for (const m of JSON.parse(process.argv[1])) await import(m);
    const { createRequire } = await import('node:module');
    console.log(Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/etcd3/')));`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(modules)], { encoding: 'utf8' }).trim() === 'true';
}

t.test('importing src/control does not load etcd3; the registry does', async (t) => {
  t.equal(loadsEtcd3(dist('index.js')), false, 'control/index.js: no etcd3');
  t.equal(loadsEtcd3(dist('index.js'), dist('etcd-registry.js')), true, 'the registry module loads it (what openRegistry imports)');
});
