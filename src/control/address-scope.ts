/**
 * Which container addresses a network's MAC records may carry (for ARP / ND suppression and announcements): pure.
 *
 * A network's definition has one subnet. Addresses of its family must be inside it: a container that uses another
 * address (a forged one, a second network's, 169.254/16) never has it advertised nor believed from another host's
 * record. The definition names no subnet of the other family (IPv6 next to an IPv4 subnet, in practice), so those
 * addresses are not restricted by prefix, link-local fe80::/10 included: Docker derives it from the container's MAC
 * and ND suppression answers for it too. They are still claims under the ownership rule (MacView): the first live
 * claim owns an address, so a forged one is a conflict, never a takeover. Never carried, in either family: the
 * unspecified address, loopback, multicast and IPv4 broadcast (no container owns them).
 */
import { BlockList, isIPv4 } from 'node:net';

/** A predicate over canonical addresses: true when `subnet`'s network may advertise the address. */
export function addressScope(subnet: string): (ip: string) => boolean {
  const never = new BlockList();
  never.addSubnet('0.0.0.0', 8, 'ipv4');
  never.addSubnet('127.0.0.0', 8, 'ipv4');
  never.addSubnet('224.0.0.0', 3, 'ipv4'); // multicast and reserved, broadcast included
  never.addAddress('::', 'ipv6');
  never.addAddress('::1', 'ipv6');
  never.addSubnet('ff00::', 8, 'ipv6');
  const inside = new BlockList();
  const m = /^(.+)\/(\d+)$/.exec(subnet);
  const family = m !== null && isIPv4(m[1]!) ? 'ipv4' : 'ipv6';
  if (m !== null) inside.addSubnet(m[1]!, Number(m[2]), family);
  return (ip) => {
    const type = isIPv4(ip) ? 'ipv4' : 'ipv6';
    if (never.check(ip, type)) return false;
    return type !== family || inside.check(ip, type);
  };
}
