/**
 * ARP as the data path uses it (twin of native/src/arp.cc): the IPv4 address a frame's sender speaks for, ARP
 * requests the router may answer itself (suppression) and their answers, and the gratuitous ARP that tells a bridge
 * an address moved to another MAC. Untagged Ethernet + IPv4, padded to the 60-byte minimum.
 */
import { ARP_LEN, ARP_REPLY, ARP_REQUEST, encodeArp } from './arp.js';
import { formatIp, parseIp, parseMac, u16 } from './bytes.js';
import { encodeEthernet, ETH_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4 } from './ethernet.js';

export const MIN_FRAME = 60;
const BROADCAST = new Uint8Array(6).fill(0xff);

function isArpIpv4(f: Uint8Array): boolean {
  return f.length >= ETH_HEADER_LEN + ARP_LEN && u16(f, 12) === ETHERTYPE_ARP && u16(f, 14) === 1 && u16(f, 16) === ETHERTYPE_IPV4 && f[18] === 6 && f[19] === 4;
}

const pad = (f: Uint8Array): Uint8Array => {
  if (f.length >= MIN_FRAME) return f;
  const out = new Uint8Array(MIN_FRAME);
  out.set(f);
  return out;
};

/** The IPv4 address a frame's sender uses (ARP sender, or IPv4 source); undefined otherwise, or for 0.0.0.0. */
export function senderIpv4(f: Uint8Array): string | undefined {
  let at: number;
  if (isArpIpv4(f)) at = 28;
  else if (f.length >= 34 && u16(f, 12) === ETHERTYPE_IPV4 && f[14]! >> 4 === 4) at = 26;
  else return undefined;
  const ip = f.subarray(at, at + 4);
  return ip.every((b) => b === 0) ? undefined : formatIp(ip);
}

/** The address an ARP request (who-has) asks about; undefined for anything else. */
export function arpRequestTarget(f: Uint8Array): string | undefined {
  return isArpIpv4(f) && u16(f, 20) === ARP_REQUEST ? formatIp(f.subarray(38, 42)) : undefined;
}

/** The answer to `request`: its target address is at `mac`. */
export function arpReply(request: Uint8Array, mac: string): Uint8Array {
  const m = parseMac(mac);
  return pad(encodeEthernet(request.subarray(6, 12), m, ETHERTYPE_ARP, encodeArp(ARP_REPLY, m, request.subarray(38, 42), request.subarray(22, 28), request.subarray(28, 32))));
}

/** "`ip` is at `mac`", to every host on the bridge (sender = target address: neighbour caches take it at once). */
export function gratuitousArp(ip: string, mac: string): Uint8Array {
  const m = parseMac(mac);
  const a = parseIp(ip);
  return pad(encodeEthernet(BROADCAST, m, ETHERTYPE_ARP, encodeArp(ARP_REQUEST, m, a, new Uint8Array(6), a)));
}
