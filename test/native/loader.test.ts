/** The one loader of the addon (src/dataplane/native.ts): cached load, and errno → VxlanRouterError in one place. */
import t from 'tap';
import { VxlanRouterError } from '../../src/errors.js';
import { loadNative, toRouterError } from '../../src/dataplane/native.js';

t.test('loadNative loads once', async (t) => {
  t.equal(loadNative(), loadNative());
  t.type(loadNative().createEngine, 'function');
});

t.test('toRouterError maps errno names (and the call, where the errno is ambiguous)', async (t) => {
  const native = (code: string, syscall: string): Error =>
    Object.assign(new Error(`${syscall}: failed`), { code, syscall, errno: -1 });
  const cases: [Error | string, string, RegExp][] = [
    [native('EADDRINUSE', 'bind UDP 198.51.100.1 port 4789'), 'E_PORT_IN_USE', /--port/],
    [native('EPERM', 'TUNSETIFF vxr0'), 'E_PRIVILEGE', /root/],
    [native('EACCES', 'open /dev/net/tun'), 'E_PRIVILEGE', /root/],
    [native('EADDRNOTAVAIL', 'bind UDP 198.51.100.77 port 4789'), 'E_ADDRESS', /--local/],
    [native('ENODEV', 'SIOCBRADDIF tap0 to bridge nobr'), 'E_NO_BRIDGE', /bridge/],
    [native('EOPNOTSUPP', 'SIOCBRADDIF tap0 to bridge dummy0'), 'E_NO_BRIDGE', /bridge/],
    [native('ENOENT', 'open /dev/net/tun'), 'E_NO_TUN', /modprobe tun/],
    [native('ENODEV', 'open /dev/net/tun'), 'E_NO_TUN', /modprobe tun/],
    [native('ENODEV', 'if_nametoindex x'), 'E_SYSTEM', /if_nametoindex/],
    [native('ENOENT', 'somewhere else'), 'E_SYSTEM', /somewhere/],
    [native('EMFILE', 'socket(UDP)'), 'E_SYSTEM', /socket/],
    ['a string', 'E_SYSTEM', /a string/],
  ];
  for (const [err, code, message] of cases) {
    const e = toRouterError(err);
    t.ok(e instanceof VxlanRouterError);
    t.match(e, { code, message }, `${typeof err === 'string' ? err : (err as Error & { code: string }).code} → ${code}`);
    t.equal(e.cause, err);
  }
  const ours = new VxlanRouterError('E_CONFIG', 'x');
  t.equal(toRouterError(ours), ours, 'our own errors pass through');
});
