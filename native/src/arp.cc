// ARP for the engine (see arp.h). Every offset is checked against the length passed in.
#include "arp.h"

#include <string.h>

namespace vxr {

namespace {

constexpr uint16_t kTypeArp = 0x0806, kTypeIpv4 = 0x0800;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t Be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) | (p[2] << 8) | p[3];
}

// Ethernet/IPv4 ARP: hardware type 1, protocol 0x0800, lengths 6 and 4.
bool IsArpIpv4(const uint8_t* f, size_t len) {
  return len >= kArpFrameLen && Be16(f + 12) == kTypeArp && Be16(f + 14) == 1 && Be16(f + 16) == kTypeIpv4 &&
         f[18] == 6 && f[19] == 4;
}

}  // namespace

bool SenderIpv4(const uint8_t* f, size_t len, uint32_t* ip) {
  if (IsArpIpv4(f, len)) {
    *ip = Be32(f + 28);
  } else if (len >= 34 && Be16(f + 12) == kTypeIpv4 && (f[14] >> 4) == 4) {
    *ip = Be32(f + 26);
  } else {
    return false;
  }
  return *ip != 0;
}

bool ArpRequestTarget(const uint8_t* f, size_t len, uint32_t* target) {
  if (!IsArpIpv4(f, len) || Be16(f + 20) != 1) return false;
  *target = Be32(f + 38);
  return true;
}

void StartAnswer(const uint8_t* request, uint64_t mac, uint8_t* out, size_t len, uint8_t m[6]) {
  for (int i = 0; i < 6; i++) m[i] = static_cast<uint8_t>(mac >> (40 - 8 * i));
  memset(out, 0, len);
  memcpy(out, request + 6, 6);  // to the requester
  memcpy(out + 6, m, 6);        // from the MAC that has the address
}

void WriteArpReply(const uint8_t* request, uint64_t mac, uint8_t out[kMinFrame]) {
  uint8_t m[6];
  StartAnswer(request, mac, out, kMinFrame, m);
  memcpy(out + 12, request + 12, 8);  // EtherType ARP; hardware 1, protocol IPv4, lengths 6 and 4
  out[21] = 2;                        // operation: reply
  memcpy(out + 22, m, 6);            // sender: the MAC
  memcpy(out + 28, request + 38, 4);  // ... and the address asked about
  memcpy(out + 32, request + 22, 10);  // target: the requester's MAC and address
}

}  // namespace vxr
