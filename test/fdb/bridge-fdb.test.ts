/** The brforward codec: struct __fdb_entry (16 bytes) as the kernel writes it; bytes pinned from a real bridge. */
import t from 'tap';
import { BRIDGE_FDB_ENTRY_BYTES, decodeBridgeFdb, encodeBridgeFdb } from '../../src/fdb/index.js';

t.test('decodeBridgeFdb reads struct __fdb_entry; encode is its inverse', async (t) => {
  // Two entries read from /sys/class/net/br0/brforward of a bridge with one veth (x86-64): the veth peer's MAC
  // learned on port 1 (age 0x27 ticks), and the port's own MAC (is_local).
  const real = Buffer.from('e2b103081b6c01002700000000000000' + '864100730b8201010000000000000000', 'hex');
  t.same(decodeBridgeFdb(real), [
    { mac: 'e2:b1:03:08:1b:6c', port: 1, local: false, ageTicks: 0x27 },
    { mac: '86:41:00:73:0b:82', port: 1, local: true, ageTicks: 0 },
  ]);
  const many = [
    { mac: '02:00:00:00:00:01', port: 0x1ff, local: false, ageTicks: 0xdeadbeef },
    { mac: 'ff:ee:dd:cc:bb:aa', port: 7, local: true, ageTicks: 1 },
  ];
  t.same(decodeBridgeFdb(encodeBridgeFdb(many)), many, 'port_hi is the high byte of the port number');
  t.same(decodeBridgeFdb(encodeBridgeFdb(many, false), false), many, 'big-endian hosts');
  t.equal(encodeBridgeFdb(many).length, 2 * BRIDGE_FDB_ENTRY_BYTES);
  t.same(decodeBridgeFdb(real.subarray(0, 16 + 9)).length, 1, 'a trailing partial entry is ignored');
  t.same(decodeBridgeFdb(new Uint8Array(0)), []);
  const offset = Buffer.concat([Buffer.alloc(3), real]).subarray(3);
  t.same(decodeBridgeFdb(offset)[1]?.mac, '86:41:00:73:0b:82', 'a view at an odd offset of its buffer');
});
