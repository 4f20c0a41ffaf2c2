/**
 * The addon's TAP and link helpers against the real kernel, in a throwaway namespace:
 *   [vxr<id>-tap]  br0 (bridge) ◀─ TAP
 * The addon acts on the namespace of the calling process, so each case runs in a child `node` inside it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Lab, labSkipReason } from '../../src/lab/lab.js';

// The child loads the TypeScript loader module straight from src/ through tsx, so no `npm run build:ts` is needed.
const NATIVE = fileURLToPath(new URL('../../src/dataplane/native.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

t.test('openTap / closeFd / deleteLink', { skip: labSkipReason() ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const host = await lab.addHost('tap', '198.51.100.1');
  /** Runs `body` (JS, with `n` = the addon) in the namespace; returns what it prints. */
  const inNs = (body: string): { out: string; err: string; status: number | null } => {
    const code = `const { loadNative } = await import(${JSON.stringify(NATIVE)}); const n = loadNative(); ${body}`;
    const r = spawnSync('ip', ['netns', 'exec', host.ns, process.execPath, '--import', TSX, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 10_000 });
    return { out: r.stdout, err: r.stderr, status: r.status };
  };
  const link = (name: string): { mtu: number; master?: string; flags: string[] } | undefined => {
    const r = spawnSync('ip', ['-n', host.ns, '-j', 'link', 'show', name], { encoding: 'utf8' });
    return r.status === 0 ? (JSON.parse(r.stdout) as { mtu: number; master?: string; flags: string[] }[])[0] : undefined;
  };

  // Open, inspect from outside while the fd is held, then close: the TAP disappears with its fd.
  const held = inNs(`const tap = n.openTap('vxrt0', 1400, 'br0'); console.log(JSON.stringify(tap));
    const { execFileSync } = await import('node:child_process');
    console.log(execFileSync('ip', ['-j', 'link', 'show', 'vxrt0'], { encoding: 'utf8' }).trim());
    const { readFileSync } = await import('node:fs');
    console.log(readFileSync('/proc/sys/net/ipv6/conf/vxrt0/disable_ipv6', 'utf8').trim());
    n.closeFd(tap.fd);`);
  t.equal(held.status, 0, held.err);
  const [opened, shown, noV6] = held.out.trim().split('\n');
  t.match(JSON.parse(opened!), { name: 'vxrt0', fd: Number });
  t.match((JSON.parse(shown!) as unknown[])[0], { mtu: 1400, master: 'br0', flags: ['BROADCAST', 'MULTICAST', 'UP'] });
  t.equal(noV6, '1', 'no IPv6 of its own on the bridge port');
  t.equal(link('vxrt0'), undefined, 'closing the fd removed the TAP');

  // A kernel-chosen name, then deleteLink while the fd is still open.
  const named = inNs(`const tap = n.openTap('', 1500, 'br0'); n.deleteLink(tap.name); console.log(tap.name);
    const { existsSync } = await import('node:fs'); console.log(existsSync('/sys/class/net/' + tap.name)); n.closeFd(tap.fd);`);
  t.match(named.out, /^tap\d+\nfalse\n$/, 'deleteLink removed the TAP');

  // Errors carry the errno name and what was attempted; nothing is left behind.
  const noBridge = inNs(`try { n.openTap('vxrt1', 1400, 'nobr'); } catch (e) { console.log(e.code, '|', e.message); }`);
  t.match(noBridge.out, /^ENODEV \| SIOCBRADDIF vxrt1 to bridge nobr: No such device/);
  t.equal(link('vxrt1'), undefined, 'no TAP left after a failed enslave');
  const notBridge = inNs(`try { n.openTap('vxrt3', 1400, 'eth0'); } catch (e) { console.log(e.code, '|', e.message); }`);
  t.match(notBridge.out, /^(EOPNOTSUPP|EINVAL|ENODEV) \| SIOCBRADDIF vxrt3 to bridge eth0/, 'enslaving to a non-bridge fails');
  t.equal(link('vxrt3'), undefined, 'no TAP left after enslaving to a non-bridge');
  const badMtu = inNs(`try { n.openTap('vxrt2', 65535, 'br0'); } catch (e) { console.log(e.code, '|', e.message); }`);
  t.match(badMtu.out, /^EINVAL \| SIOCSIFMTU vxrt2 65535/);
  t.equal(link('vxrt2'), undefined);
  const gone = inNs(`try { n.deleteLink('nosuch0'); } catch (e) { console.log(e.code); }`);
  t.equal(gone.out.trim(), 'ENODEV');
  t.equal(inNs(`console.log(n.interfaceOf('198.51.100.1'), n.interfaceOf('198.51.100.77'))`).out.trim(), 'eth0 null');
});
