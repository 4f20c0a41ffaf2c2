// Table snapshot helpers: built on the JS thread, immutable once published to the engine (see table.h).
#include "table.h"

#include <stdio.h>

namespace vxr {

int Table::AddPeer(const Addr& a) {
  for (size_t i = 0; i < peers.size(); i++)
    if (peers[i].addr == a) return static_cast<int>(i);
  Peer p;
  p.addr = a;
  p.salen = ToSockaddr(a, 0, &p.sa);
  peers.push_back(p);
  return static_cast<int>(peers.size() - 1);
}

bool ParseMac(const char* text, uint64_t* key) {
  unsigned b[6];
  char tail;
  if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6) return false;
  uint8_t m[6];
  for (int i = 0; i < 6; i++) m[i] = static_cast<uint8_t>(b[i]);
  *key = MacKey(m);
  return true;
}

void MacToText(uint64_t key, char out[18]) {
  snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", static_cast<unsigned>((key >> 40) & 0xff),
           static_cast<unsigned>((key >> 32) & 0xff), static_cast<unsigned>((key >> 24) & 0xff),
           static_cast<unsigned>((key >> 16) & 0xff), static_cast<unsigned>((key >> 8) & 0xff),
           static_cast<unsigned>(key & 0xff));
}

}  // namespace vxr
