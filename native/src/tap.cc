#include "tap.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

namespace vxr {

namespace {

void SetName(ifreq* ifr, const std::string& name) {
  memset(ifr, 0, sizeof(*ifr));
  strncpy(ifr->ifr_name, name.c_str(), IFNAMSIZ - 1);
}

}  // namespace

TapResult OpenTap(const std::string& name, int mtu, const std::string& bridge) {
  TapResult r;
  if (name.size() >= IFNAMSIZ || bridge.size() >= IFNAMSIZ) {
    r.error = {EINVAL, "interface name longer than 15 bytes"};
    return r;
  }
  UniqueFd fd(open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd.valid()) {
    r.error = {errno, "open /dev/net/tun"};
    return r;
  }
  ifreq ifr;
  SetName(&ifr, name);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
    r.error = {errno, "TUNSETIFF " + name};
    return r;
  }
  const std::string tap(ifr.ifr_name);
  UniqueFd ctl(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!ctl.valid()) {
    r.error = {errno, "socket for interface ioctls"};
    return r;
  }
  SetName(&ifr, tap);
  ifr.ifr_mtu = mtu;
  if (ioctl(ctl.get(), SIOCSIFMTU, &ifr) < 0) {
    r.error = {errno, "SIOCSIFMTU " + tap + " " + std::to_string(mtu)};
    return r;
  }
  const unsigned tap_index = if_nametoindex(tap.c_str());
  SetName(&ifr, bridge);
  ifr.ifr_ifindex = static_cast<int>(tap_index);
  if (ioctl(ctl.get(), SIOCBRADDIF, &ifr) < 0) {
    r.error = {errno, "SIOCBRADDIF " + tap + " to bridge " + bridge};
    return r;
  }
  SetName(&ifr, tap);
  if (ioctl(ctl.get(), SIOCGIFFLAGS, &ifr) < 0 ||
      (ifr.ifr_flags |= IFF_UP, ioctl(ctl.get(), SIOCSIFFLAGS, &ifr) < 0)) {
    r.error = {errno, "SIOCSIFFLAGS up " + tap};
    return r;
  }
  r.fd = std::move(fd);
  r.name = tap;
  return r;
}

}  // namespace vxr
