/**
 * test/docker/docker-network.sh under tap, where a real dockerd can run (root, dockerd, etcd and busybox-static
 * installed; nothing is installed from here): a Docker network made by `docker-network create`, its container
 * reaching another host's over the overlay, then the same after dockerd restarts with live-restore off (the container
 * comes back with a new veth) and after `docker network rm` + `create` (the bridge goes and comes back), with the same
 * router process throughout (issue 15).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { labSkipReason } from '../../src/lab/lab.js';
import { etcdSkipReason } from '../../src/lab/etcd.js';

const SCRIPT = fileURLToPath(new URL('./docker-network.sh', import.meta.url));
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip =
  labSkipReason() ??
  etcdSkipReason() ??
  (!has('dockerd') || !has('docker') ? 'dockerd is not installed (apt-get install docker.io)' : undefined) ??
  (!existsSync('/bin/busybox') ? 'busybox-static is not installed' : undefined) ??
  (!existsSync(fileURLToPath(new URL('../../dist/cli.js', import.meta.url))) ? 'dist/ missing: npm run build' : undefined);

t.test('a Docker network across dockerd restarts and network re-creation', { skip: skip ?? false }, async (t) => {
  const r = spawnSync('bash', [SCRIPT], { encoding: 'utf8', timeout: 300_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  t.equal(r.status, 0, `the script passes (last lines: ${out.trim().split('\n').slice(-8).join(' | ')})`);
  t.match(out, /c1 restarted by dockerd: veth (\S+) \(was (?!\1)\S+\)/, 'dockerd restarted c1 with a new veth');
  t.match(out, /router h1: bridge missing since null/, 'the bridge stayed through the dockerd restart');
  t.match(out, /status: \(!\) bridge vxr-default missing since \S+: TAP vxr42 kept/, 'docker network rm: the router says the bridge is missing');
  t.match(out, /router h1 \(pid \d+\): bridge missing since null rejoins 1/, 'docker network create: the router rejoined it');
  t.match(out, /PASS: .*\n.*also after dockerd restarted and after the Docker network was removed and created again \(same router process\)/);
});
