/** Seeded random bytes through every decoder: only PacketError may come out, and flowPort stays in range. */
import t from 'tap';
import { mulberry32 } from '../helpers/prng.js';
import { PacketError } from '../../src/errors.js';
import { decodeArp, decodeEthernet, decodeIpv4, decodeIpv6, decodePorts, decodeUdp, decodeVxlanHeader, flowPort } from '../../src/packet/index.js';


t.test('5000 random buffers', async (t) => {
  const rnd = mulberry32(2026);
  const decoders = [decodeEthernet, (b: Uint8Array) => decodeArp(b, 14), (b: Uint8Array) => decodeIpv4(b, 14), (b: Uint8Array) => decodeIpv6(b, 14), (b: Uint8Array) => decodeUdp(b, 34), (b: Uint8Array) => decodeVxlanHeader(b), (b: Uint8Array) => decodePorts(b, 34)];
  let foreign = 0;
  let outOfRange = 0;
  for (let i = 0; i < 5000; i++) {
    const b = new Uint8Array(Math.floor(rnd() * 200));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
    if (b.length > 15 && rnd() < 0.5) b.set([0x08, 0x00, 0x45], 12);
    for (const d of decoders) {
      try {
        d(b);
      } catch (err) {
        if (!(err instanceof PacketError)) foreign++;
      }
    }
    const p = flowPort(b);
    if (p < 49152 || p > 65535) outOfRange++;
  }
  t.equal(foreign, 0, 'no error other than PacketError');
  t.equal(outOfRange, 0, 'flowPort always in 49152-65535');
});
