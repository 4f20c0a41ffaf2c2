/**
 * The layers of src/ (docs: README "Layout", ../shared/DESIGN.md): imports point one way,
 *   cli → agent → control / dataplane → fdb → packet → errors,
 * config beside the chain (packet, errors), and a folder is entered through its index.ts only.
 * test/layers.test.ts runs this with `depcruise`; a new edge that breaks a rule fails the suite.
 */
const folder = (name) => `^src/${name}/`;
/** Folders below the agent, and what each may import (besides itself and the leaf modules src/*.ts). */
const below = {
  packet: [],
  fdb: ['packet'],
  dataplane: ['fdb', 'packet'],
  control: ['fdb', 'packet'],
  config: ['packet'],
};
const LEAVES = '^src/(errors|log|etcd-connection)[.]ts$';

module.exports = {
  forbidden: [
    ...Object.entries(below).map(([name, allowed]) => ({
      name: `${name}-imports-only-below`,
      comment: `src/${name} may import only ${allowed.length ? allowed.join(', ') + ' and ' : ''}the leaf modules (errors, log, etcd-connection)`,
      severity: 'error',
      from: { path: folder(name) },
      to: { path: '^src/', pathNot: [folder(name), LEAVES, ...allowed.map(folder)] },
    })),
    {
      name: 'only-agent-joins-control-and-dataplane',
      comment: 'the data path never imports the control plane, nor the reverse; only agent/ wires them',
      severity: 'error',
      from: { path: '^src/(control|dataplane)/' },
      to: { path: '^src/(control|dataplane)/', pathNot: ['$1'] },
    },
    {
      name: 'agent-not-cli',
      comment: 'agent/ is below cli/',
      severity: 'error',
      from: { path: '^src/agent/' },
      to: { path: '^src/cli' },
    },
    {
      name: 'cli-through-agent',
      comment: 'cli/ reaches the product through agent/ and config/ (control, dataplane, fdb, packet are agent business)',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: '^src/(control|dataplane|fdb|packet)/' },
    },
    {
      name: 'no-lab-in-product',
      comment: 'src/lab is the test and demo harness: nothing the product runs imports it',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/lab/' },
      to: { path: '^src/lab/' },
    },
    {
      name: 'through-index',
      comment: "another folder's internals are reached through its index.ts (cli may take agent/control-protocol.ts alone: it starts faster)",
      severity: 'error',
      from: { path: '^src/([a-z]+)/', pathNot: '^src/lab/' },
      to: {
        path: '^src/(agent|control|dataplane|fdb|packet|config)/',
        pathNot: ['^src/$1/', '/index[.]ts$', '^src/agent/control-protocol[.]ts$'],
      },
    },
    {
      name: 'no-cycles',
      comment: 'no import cycles that run code (a type-only import back, e.g. a view interface, is fine)',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|native/build)' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
