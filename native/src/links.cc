// rtnetlink link queries, events and bridge attachment (links.h). Status codes only; nothing throws.
#include "links.h"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

#include <memory>

namespace vxr {

namespace {

// Large enough for a link dump message with every attribute (the kernel sizes them by the page).
constexpr size_t kNlBuf = 32768;

std::string AttrString(const rtattr* a) {
  const size_t n = RTA_PAYLOAD(a);
  const char* p = static_cast<const char*>(RTA_DATA(a));
  return std::string(p, strnlen(p, n));
}

bool AttrU32(const rtattr* a, uint32_t* out) {
  if (RTA_PAYLOAD(a) < sizeof(uint32_t)) return false;
  memcpy(out, RTA_DATA(a), sizeof(uint32_t));
  return true;
}

void ParseLinkInfo(const rtattr* info, std::string* kind) {
  int len = static_cast<int>(RTA_PAYLOAD(info));
  for (const rtattr* a = static_cast<const rtattr*>(RTA_DATA(info)); RTA_OK(a, len); a = RTA_NEXT(a, len))
    if (a->rta_type == IFLA_INFO_KIND) *kind = AttrString(a);
}

void SetName(ifreq* ifr, const std::string& name) {
  memset(ifr, 0, sizeof(*ifr));
  strncpy(ifr->ifr_name, name.c_str(), IFNAMSIZ - 1);
}

}  // namespace

bool ParseLinkMessages(const uint8_t* buf, size_t len, std::vector<LinkEvent>* out) {
  size_t off = 0;
  while (off + sizeof(nlmsghdr) <= len) {
    nlmsghdr h;
    memcpy(&h, buf + off, sizeof(h));
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > len - off) return false;
    if ((h.nlmsg_type == RTM_NEWLINK || h.nlmsg_type == RTM_DELLINK) && h.nlmsg_len >= NLMSG_LENGTH(sizeof(ifinfomsg))) {
      // Aligned copy: the buffer a caller hands in need not be aligned for nlmsghdr.
      std::vector<uint8_t> msg(buf + off, buf + off + h.nlmsg_len);
      const auto* mh = reinterpret_cast<const nlmsghdr*>(msg.data());
      const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(mh));
      LinkEvent e;
      e.deleted = h.nlmsg_type == RTM_DELLINK;
      e.index = ifi->ifi_index;
      e.flags = ifi->ifi_flags;
      int alen = static_cast<int>(h.nlmsg_len - NLMSG_LENGTH(sizeof(ifinfomsg)));
      for (const rtattr* a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        uint32_t v = 0;
        switch (a->rta_type) {
          case IFLA_IFNAME: e.name = AttrString(a); break;
          case IFLA_MASTER: if (AttrU32(a, &v)) e.master = static_cast<int>(v); break;
          case IFLA_MTU: if (AttrU32(a, &v)) e.mtu = static_cast<int>(v); break;
          case IFLA_LINKINFO: ParseLinkInfo(a, &e.kind); break;
          default: break;
        }
      }
      out->push_back(std::move(e));
    }
    off += NLMSG_ALIGN(h.nlmsg_len);
  }
  return true;
}

SysError GetLink(const std::string& name, LinkEvent* out, bool* found) {
  *found = false;
  if (name.empty() || name.size() >= IFNAMSIZ) return {EINVAL, "interface name must be 1-15 bytes: " + name};
  UniqueFd nl(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!nl.valid()) return Errno("socket(NETLINK_ROUTE)");
  struct {
    nlmsghdr h;
    ifinfomsg i;
    char attrs[RTA_SPACE(IFNAMSIZ)];
  } req{};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg)) + RTA_LENGTH(name.size() + 1);
  req.h.nlmsg_type = RTM_GETLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST;
  req.h.nlmsg_seq = 1;
  req.i.ifi_family = AF_UNSPEC;
  auto* a = reinterpret_cast<rtattr*>(req.attrs);
  a->rta_type = IFLA_IFNAME;
  a->rta_len = static_cast<unsigned short>(RTA_LENGTH(name.size() + 1));
  memcpy(RTA_DATA(a), name.c_str(), name.size() + 1);
  if (send(nl.get(), &req, req.h.nlmsg_len, 0) < 0) return Errno("RTM_GETLINK " + name);
  std::unique_ptr<uint8_t[]> buf(new uint8_t[kNlBuf]);
  const ssize_t n = recv(nl.get(), buf.get(), kNlBuf, 0);
  if (n < 0) return Errno("RTM_GETLINK " + name);
  nlmsghdr h;
  if (static_cast<size_t>(n) < sizeof(h)) return {EPROTO, "RTM_GETLINK " + name + ": short answer"};
  memcpy(&h, buf.get(), sizeof(h));
  if (h.nlmsg_type == NLMSG_ERROR) {
    nlmsgerr e;
    if (static_cast<size_t>(n) < NLMSG_LENGTH(sizeof(e))) return {EPROTO, "RTM_GETLINK " + name + ": short error"};
    memcpy(&e, buf.get() + NLMSG_HDRLEN, sizeof(e));
    if (e.error == -ENODEV) return {};
    return {-e.error, "RTM_GETLINK " + name};
  }
  std::vector<LinkEvent> got;
  if (!ParseLinkMessages(buf.get(), static_cast<size_t>(n), &got) || got.empty())
    return {EPROTO, "RTM_GETLINK " + name + ": unreadable answer"};
  *out = std::move(got.front());
  *found = true;
  return {};
}

SysError AttachLink(const std::string& link, const std::string& bridge, int mtu) {
  if (link.empty() || link.size() >= IFNAMSIZ || bridge.empty() || bridge.size() >= IFNAMSIZ)
    return {EINVAL, "interface names must be 1-15 bytes"};
  UniqueFd ctl(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!ctl.valid()) return Errno("socket for interface ioctls");
  ifreq ifr;
  SetName(&ifr, link);
  ifr.ifr_mtu = mtu;
  if (ioctl(ctl.get(), SIOCSIFMTU, &ifr) < 0) return Errno("SIOCSIFMTU " + link + " " + std::to_string(mtu));
  LinkEvent now;
  bool found = false;
  if (SysError e = GetLink(link, &now, &found); !e.ok()) return e;
  if (!found) return {ENODEV, "no link " + link};
  const unsigned bridge_index = if_nametoindex(bridge.c_str());
  if (bridge_index == 0) return Errno("SIOCBRADDIF " + link + " to bridge " + bridge);
  if (now.master != static_cast<int>(bridge_index)) {
    SetName(&ifr, bridge);
    ifr.ifr_ifindex = now.index;
    if (ioctl(ctl.get(), SIOCBRADDIF, &ifr) < 0) return Errno("SIOCBRADDIF " + link + " to bridge " + bridge);
  }
  SetName(&ifr, link);
  if (ioctl(ctl.get(), SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags |= IFF_UP, ioctl(ctl.get(), SIOCSIFFLAGS, &ifr) < 0))
    return Errno("SIOCSIFFLAGS up " + link);
  return {};
}

SysError LinkMonitor::Open(Callback on_events, std::unique_ptr<LinkMonitor>* out) {
  std::unique_ptr<LinkMonitor> m(new LinkMonitor());
  m->on_events_ = std::move(on_events);
  m->sock_.reset(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
  if (!m->sock_.valid()) return Errno("socket(NETLINK_ROUTE)");
  // A bridge deleted with its ports makes a burst of events: room for them, and ENOBUFS (counted as overflow) past it.
  const int rcvbuf = 1 << 20;
  setsockopt(m->sock_.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK;
  if (bind(m->sock_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) return Errno("bind(RTMGRP_LINK)");
  m->stop_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!m->stop_fd_.valid()) return Errno("eventfd");
  m->thread_ = std::thread([p = m.get()] { p->Loop(); });
  pthread_setname_np(m->thread_.native_handle(), "vxr-links");
  *out = std::move(m);
  return {};
}

LinkMonitor::~LinkMonitor() { Close(); }

void LinkMonitor::Close() {
  if (closed_) return;
  closed_ = true;
  const uint64_t one = 1;
  if (write(stop_fd_.get(), &one, sizeof(one)) < 0) { /* the thread also stops on a closed socket */ }
  if (thread_.joinable()) thread_.join();
  sock_.reset();
  stop_fd_.reset();
}

void LinkMonitor::Loop() {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[kNlBuf]);
  pollfd pfd[2] = {{sock_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
  for (;;) {
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (pfd[1].revents) return;
    std::vector<LinkEvent> events;
    bool overflow = false;
    for (;;) {  // everything queued, then one callback
      const ssize_t n = recv(sock_.get(), buf.get(), kNlBuf, 0);
      if (n < 0) {
        if (errno == ENOBUFS) {
          overflow = true;
          continue;
        }
        break;  // EAGAIN: drained
      }
      if (!ParseLinkMessages(buf.get(), static_cast<size_t>(n), &events)) overflow = true;
      if (events.size() > 4096) break;  // bounded: the rest comes with the next wake-up
    }
    if (!events.empty() || overflow) on_events_(std::move(events), overflow);
  }
}

}  // namespace vxr
