/**
 * Default socket and state directories follow the network namespace: a named one (`ip netns add h1`) gets a
 * directory of its own, any other (the machine's, a container's) the plain paths; the environment replaces the roots.
 * The namespace facts come from a stand-in probe.
 */
import t from 'tap';
import { defaultRunDir, defaultStateDir, namespaceName, RUN_DIR, STATE_DIR, type NamespaceProbe } from '../../src/config/index.js';

const probe = (names: string[]): NamespaceProbe => ({ namesOfSelf: () => names });

t.test('named namespaces get their own directories, any other the plain ones', async (t) => {
  const machine = probe([]);
  t.equal(namespaceName(machine), null);
  t.equal(defaultRunDir({}, machine), RUN_DIR);
  t.equal(defaultStateDir({}, machine), STATE_DIR);

  const h1 = probe(['h1']);
  t.equal(namespaceName(h1), 'h1');
  t.equal(defaultRunDir({}, h1), '/run/vxlan-router/netns/h1');
  t.equal(defaultStateDir({}, h1), '/var/lib/vxlan-router/netns/h1');
  t.equal(namespaceName(probe(['b', 'a'])), 'a', 'two names for one namespace: the first, so every caller agrees');
});

t.test('the environment replaces the roots, the namespace still applies', async (t) => {
  const h1 = probe(['h1']);
  const env = { VXLAN_ROUTER_RUN_DIR: '/tmp/x/run', VXLAN_ROUTER_STATE_DIR: '/tmp/x/state' };
  t.equal(defaultRunDir(env, h1), '/tmp/x/run/netns/h1');
  t.equal(defaultStateDir(env, h1), '/tmp/x/state/netns/h1');
  t.equal(defaultRunDir({ VXLAN_ROUTER_RUN_DIR: '' }, h1), '/run/vxlan-router/netns/h1', 'empty: the default root');
});
