// TAP set-up, JS thread only. Each fd is held by a UniqueFd until handed to the caller, so every failure path closes
// it (and the kernel removes the TAP).
#include "tap.h"

#include "offload.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace vxr {

namespace {

void SetName(ifreq* ifr, const std::string& name) {
  memset(ifr, 0, sizeof(*ifr));
  strncpy(ifr->ifr_name, name.c_str(), IFNAMSIZ - 1);
}

}  // namespace

TapResult OpenTap(const std::string& name, int mtu, const std::string& bridge, bool offloads) {
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
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (offloads ? IFF_VNET_HDR : 0);
  if (ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
    r.error = {errno, "TUNSETIFF " + name};
    return r;
  }
  if (offloads) {
    int hdr_len = static_cast<int>(kVnetHdrLen);
    if (ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr_len) < 0) {
      r.error = {errno, "TUNSETVNETHDRSZ " + name};
      return r;
    }
    r.vnet_hdr = true;
    // Best first; a kernel that refuses TSO may still take checksum offload, and none at all still works.
    for (const unsigned want : {TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, TUN_F_CSUM | TUN_F_TSO4, TUN_F_CSUM}) {
      if (ioctl(fd.get(), TUNSETOFFLOAD, want) == 0) {
        r.offloads = want;
        break;
      }
    }
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
  // No bridge (""): a TAP recreated while its bridge is away; AttachLink puts it on the bridge when it returns.
  if (!bridge.empty() && ioctl(ctl.get(), SIOCBRADDIF, &ifr) < 0) {
    r.error = {errno, "SIOCBRADDIF " + tap + " to bridge " + bridge};
    return r;
  }
  // A bridge port carries the bridge's traffic, not its own: no IPv6 link-local address, router solicitations or
  // MLD reports from the TAP itself (they would be flooded to every peer). Absent when IPv6 is off: nothing to do.
  UniqueFd sysctl(open(("/proc/sys/net/ipv6/conf/" + tap + "/disable_ipv6").c_str(), O_WRONLY | O_CLOEXEC));
  if (sysctl.valid() && write(sysctl.get(), "1", 1) < 0) {
    r.error = {errno, "disable IPv6 on " + tap};
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

SysError DeleteLink(const std::string& name) {
  const unsigned index = if_nametoindex(name.c_str());
  if (index == 0) return {errno, "if_nametoindex " + name};
  UniqueFd nl(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!nl.valid()) return {errno, "socket(NETLINK_ROUTE)"};
  struct {
    nlmsghdr h;
    ifinfomsg i;
  } req{};
  req.h.nlmsg_len = sizeof(req);
  req.h.nlmsg_type = RTM_DELLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.h.nlmsg_seq = 1;
  req.i.ifi_family = AF_UNSPEC;
  req.i.ifi_index = static_cast<int>(index);
  if (send(nl.get(), &req, sizeof(req), 0) < 0) return {errno, "RTM_DELLINK " + name};
  alignas(nlmsghdr) char buf[1024];
  const ssize_t n = recv(nl.get(), buf, sizeof(buf), 0);
  if (n < 0) return {errno, "RTM_DELLINK " + name};
  const auto* h = reinterpret_cast<const nlmsghdr*>(buf);
  if (n >= static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr))) && h->nlmsg_type == NLMSG_ERROR) {
    const int err = -reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
    if (err != 0) return {err, "RTM_DELLINK " + name};
  }
  return {};
}

}  // namespace vxr
