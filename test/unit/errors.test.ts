import t from 'tap';
import { PacketError, VxlanRouterError } from '../../src/errors.js';

t.test('PacketError carries layer, offset and a stable code', async (t) => {
  const e = new PacketError('ipv4', 3, 'header shorter than 20 bytes');
  t.ok(e instanceof VxlanRouterError);
  t.equal(e.code, 'E_PACKET');
  t.equal(e.layer, 'ipv4');
  t.equal(e.offset, 3);
  t.match(e.message, /^ipv4: header shorter than 20 bytes \(at byte 3\)$/);
  t.equal(e.name, 'PacketError');
});
