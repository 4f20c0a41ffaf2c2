/**
 * The limits shared by C++ and TypeScript are defined on both sides; this pins each C++ value (the addon's frozen
 * `limits`, native/src/addon.cc) to its TypeScript constant, so the two cannot drift apart unnoticed.
 */
import t from 'tap';
import { MAX_IPS } from '../../src/dataplane/engine.js';
import { loadNative } from '../../src/dataplane/native.js';
import { MAX_PEERS, MAX_REJECTED } from '../../src/dataplane/traffic.js';
import { MAX_LEARNED } from '../../src/fdb/index.js';
import { MAX_VNI } from '../../src/packet/index.js';

t.test('every limit is the same number in C++ and TypeScript', async (t) => {
  const { limits } = loadNative();
  t.equal(limits.maxRejected, MAX_REJECTED, 'refused sources kept (TrafficStats::kMaxRejected)');
  t.equal(limits.maxPeers, MAX_PEERS, 'peers counted (TrafficStats::kMaxPeers)');
  t.equal(limits.maxIps, MAX_IPS, 'addresses per local MAC (LocalMacTable::kMaxIps)');
  t.equal(limits.maxVni, MAX_VNI, 'largest VNI (kMaxVni)');
  t.equal(limits.maxLearned, MAX_LEARNED, 'largest learnMax / learnMaxPerPeer (kMaxLearned)');
});

t.test('the addon exports exactly these limits, frozen', async (t) => {
  const { limits } = loadNative();
  t.same(Object.keys(limits).sort(), ['maxIps', 'maxLearned', 'maxPeers', 'maxRejected', 'maxVni'], 'a new limit gets a pin here');
  t.ok(Object.isFrozen(limits));
});
