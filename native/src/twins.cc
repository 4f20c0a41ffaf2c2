// Test twins: N-API functions that run the engine's byte-level code (wire.h, offload.h, arp.h, nd.h) on frames
// handed in from JS, so tests can put the same vectors through the C++ and the TypeScript code and compare bytes.
// Not product surface: nothing in src/ calls them outside the tests. Each one names its TypeScript twin, or the
// test that pins it when there is no twin. JS thread only; every buffer is copied in or out, nothing is kept.
#include "twins.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <string>
#include <utility>
#include <vector>

#include "arp.h"
#include "counters.h"
#include "icmp.h"
#include "probe.h"
#include "js-args.h"
#include "js-error.h"
#include "learn.h"
#include "mss.h"
#include "nd.h"
#include "offload.h"
#include "table.h"
#include "tx.h"
#include "wire.h"

namespace vxr {
namespace {

std::string Ipv4Text(uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 0xff) + "." + std::to_string((ip >> 8) & 0xff) +
         "." + std::to_string(ip & 0xff);
}

// encapsulate(frame, vni, src, dst, dstPort) → UDP + VXLAN + frame, as the TX thread writes it (WriteEncapHeader).
// Twin: encapsulate in src/packet/vxlan.ts; pinned by test/native/twin.test.ts.
Napi::Value EncapsulateJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t vni, port;
  Addr src, dst;
  if (!IsBytes(info[0])) return ThrowType(env, "encapsulate: frame must be a Uint8Array");
  if (!GetUint(info[1], kMaxVni, &vni)) return ThrowType(env, "encapsulate: vni must be 0-16777215");
  if (!GetAddr(info[2], &src) || !GetAddr(info[3], &dst) || src.len != dst.len)
    return ThrowType(env, "encapsulate: src and dst must be IP addresses of one family");
  if (!GetUint(info[4], 65535, &port)) return ThrowType(env, "encapsulate: dstPort must be 0-65535");
  Napi::Uint8Array frame = info[0].As<Napi::Uint8Array>();
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, kEncapHeaderLen + frame.ByteLength());
  WriteEncapHeader(out.Data(), vni, FlowPort(frame.Data(), frame.ByteLength()), static_cast<uint16_t>(port), src, dst,
                   frame.ByteLength(), Sum16(frame.Data(), frame.ByteLength()));
  if (frame.ByteLength()) memcpy(out.Data() + kEncapHeaderLen, frame.Data(), frame.ByteLength());
  return out;
}

// flowPort(frame) → the outer UDP source port. Twin: flowPort in src/packet/flow.ts; pinned by test/native/twin.test.ts.
Napi::Value FlowPortJs(const Napi::CallbackInfo& info) {
  if (!IsBytes(info[0])) return ThrowType(info.Env(), "flowPort: frame must be a Uint8Array");
  Napi::Uint8Array f = info[0].As<Napi::Uint8Array>();
  return Napi::Number::New(info.Env(), FlowPort(f.Data(), f.ByteLength()));
}

// classifyDatagram(payload, from, vnis: [{ vni, peers }], maxFrame) → the RX thread's verdict (Classify in wire.h).
// Twin: classifyDatagram in src/dataplane/classify.ts; pinned by test/native/twin.test.ts.
Napi::Value ClassifyDatagramJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Addr from;
  uint32_t max_frame;
  if (!IsBytes(info[0])) return ThrowType(env, "classifyDatagram: payload must be a Uint8Array");
  if (!GetAddr(info[1], &from)) return ThrowType(env, "classifyDatagram: from must be an IP address");
  if (!GetUint(info[3], 0xffffffffu, &max_frame)) return ThrowType(env, "classifyDatagram: maxFrame must be an integer");
  if (!info[2].IsArray()) return ThrowType(env, "classifyDatagram: vnis must be an array");
  // Copies of { vni, peers } with no static MACs, so BuildTable can read them without touching the caller's objects.
  Napi::Array in = info[2].As<Napi::Array>();
  Napi::Array vnis = Napi::Array::New(env, in.Length());
  for (uint32_t i = 0; i < in.Length(); i++) {
    if (!in.Get(i).IsObject()) return ThrowType(env, "classifyDatagram: vnis[] must be { vni, peers }");
    Napi::Object copy = Napi::Object::New(env);
    copy.Set("vni", in.Get(i).As<Napi::Object>().Get("vni"));
    copy.Set("peers", in.Get(i).As<Napi::Object>().Get("peers"));
    copy.Set("macs", Napi::Array::New(env));
    vnis.Set(i, copy);
  }
  Napi::Object wrapper = Napi::Object::New(env);
  wrapper.Set("vnis", vnis);
  Table t;
  const std::string err = BuildTable(wrapper, &t);
  if (!err.empty()) return ThrowType(env, "classifyDatagram: " + err);
  Napi::Uint8Array p = info[0].As<Napi::Uint8Array>();
  const ClassifyResult c = Classify(p.Data(), p.ByteLength(), max_frame, [&](uint32_t vni) { return t.PeerState(vni, from); });
  Napi::Object o = Napi::Object::New(env);
  if (c.ok) {
    o.Set("vni", c.vni);
    o.Set("offset", static_cast<double>(kVxlanHeaderLen));
  } else {
    o.Set("reason", kDropNames[static_cast<int>(c.reason)]);
    if (c.reason == Drop::kRxUnknownSource) o.Set("vni", c.vni);  // reported among the refused sources
  }
  return o;
}

// segmentTso(packet): `packet` is what a TAP with IFF_VNET_HDR hands the TX thread (virtio header + frame). Returns
// the frames the engine would encapsulate (segments of a TSO super-frame, or the frame with its partial checksum
// finished), or null where the engine drops it as tx_bad_offload. Pinned by test/native/offload.test.ts.
Napi::Value SegmentTsoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsBytes(info[0])) return ThrowType(env, "segmentTso: packet must be a Uint8Array");
  Napi::Uint8Array in = info[0].As<Napi::Uint8Array>();
  if (in.ByteLength() < kVnetHdrLen) return env.Null();
  const VnetHdr vh = ReadVnetHdr(in.Data());
  std::vector<uint8_t> frame(in.Data() + kVnetHdrLen, in.Data() + in.ByteLength());
  Napi::Array out = Napi::Array::New(env);
  if (vh.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
    if ((vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !FinishChecksum(frame.data(), frame.size(), vh)) return env.Null();
    out.Set(0u, Napi::Buffer<uint8_t>::Copy(env, frame.data(), frame.size()));
    return out;
  }
  TsoFrame t;
  if (!ParseTso(frame.data(), frame.size(), vh, &t)) return env.Null();
  uint8_t hdr[kMaxSegHeader];
  for (size_t i = 0; i < t.segments; i++) {
    WriteSegmentHeader(frame.data(), t, i, hdr);
    const size_t payload = SegmentPayload(t, i);
    Napi::Buffer<uint8_t> seg = Napi::Buffer<uint8_t>::New(env, t.hdr_len + payload);
    memcpy(seg.Data(), hdr, t.hdr_len);
    memcpy(seg.Data() + t.hdr_len, frame.data() + t.hdr_len + i * t.mss, payload);
    out.Set(static_cast<uint32_t>(i), seg);
  }
  return out;
}

// gsoPolicy(refusals, probes) → { actedOn: boolean[], allowed: boolean[], on: boolean }: a fresh GsoPolicy (GSO on)
// is told of each refusal ([address, errno]) in turn (actedOn: Refused's answer), then asked about each probe
// address. No TypeScript twin (the JS engine has no GSO); pinned by test/native/gso-policy.test.ts.
Napi::Value GsoPolicyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray() || !info[1].IsArray())
    return ThrowType(env, "gsoPolicy: refusals must be [address, errno][] and probes an address[]");
  std::atomic<bool> on{true};
  GsoPolicy policy(on);
  Napi::Array refusals = info[0].As<Napi::Array>(), probes = info[1].As<Napi::Array>();
  Napi::Array acted = Napi::Array::New(env, refusals.Length()), allowed = Napi::Array::New(env, probes.Length());
  for (uint32_t i = 0; i < refusals.Length(); i++) {
    const Napi::Value r = refusals.Get(i);
    Addr a;
    uint32_t err;
    if (!r.IsArray() || !GetAddr(r.As<Napi::Array>().Get(0u), &a) || !GetUint(r.As<Napi::Array>().Get(1u), 4095, &err))
      return ThrowType(env, "gsoPolicy: refusals[] must be [address, errno]");
    acted.Set(i, policy.Refused(a, static_cast<int>(err)));
  }
  for (uint32_t i = 0; i < probes.Length(); i++) {
    Addr a;
    if (!GetAddr(probes.Get(i), &a)) return ThrowType(env, "gsoPolicy: probes[] must be addresses");
    allowed.Set(i, policy.Allowed(a));
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("actedOn", acted);
  o.Set("allowed", allowed);
  o.Set("on", on.load());
  return o;
}

// mergeSegments(frames, verified = false): the TAP writes the RX thread makes of these inner frames, in order, each as
// one Buffer (virtio header + frame; merged runs as one super-frame); `verified`: they came in datagrams whose outer
// UDP checksum the kernel verified (no TCP checksum pass). Pinned by test/native/offload.test.ts.
Napi::Value MergeSegmentsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) return ThrowType(env, "mergeSegments: frames must be an array of Uint8Array");
  if (!info[1].IsUndefined() && !info[1].IsBoolean()) return ThrowType(env, "mergeSegments: verified must be a boolean");
  const bool verified = info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  Napi::Array in = info[0].As<Napi::Array>();
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < in.Length(); i++) {
    if (!IsBytes(in.Get(i))) return ThrowType(env, "mergeSegments: frames must be an array of Uint8Array");
    Napi::Uint8Array f = in.Get(i).As<Napi::Uint8Array>();
    frames.emplace_back(f.Data(), f.Data() + f.ByteLength());
  }
  Napi::Array out = Napi::Array::New(env);
  auto emit = [&](const iovec* v, int cnt, int) {
    std::vector<uint8_t> w;
    for (int i = 0; i < cnt; i++) w.insert(w.end(), static_cast<uint8_t*>(v[i].iov_base), static_cast<uint8_t*>(v[i].iov_base) + v[i].iov_len);
    out.Set(out.Length(), Napi::Buffer<uint8_t>::Copy(env, w.data(), w.size()));
  };
  TapWriteMerger merger(true);
  for (const auto& f : frames) merger.Add(f.data(), f.size(), emit, verified);
  merger.Flush(emit);
  return out;
}

// outerChecksumVerified(sender, udpGro) → whether the RX path trusts the outer UDP checksum of a datagram from
// `sender` (address text) that came with (or without) a UDP_GRO control message. Pinned by test/native/offload.test.ts.
Napi::Value OuterChecksumVerifiedJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Addr a;
  if (!info[0].IsString() || !ParseAddr(info[0].As<Napi::String>().Utf8Value().c_str(), &a))
    return ThrowType(env, "outerChecksumVerified: sender must be an IPv4 or IPv6 address");
  if (!info[1].IsBoolean()) return ThrowType(env, "outerChecksumVerified: udpGro must be a boolean");
  return Napi::Boolean::New(env, OuterChecksumVerified(a.bytes, a.len, info[1].As<Napi::Boolean>().Value()));
}

// The address a neighbour parser finds in a frame (SenderIpv4 / ArpRequestTarget for IPv4, SenderIpv6 /
// NdSolicitTarget for IPv6), as text; "" when it finds none.
std::string Found(bool (*find)(const uint8_t*, size_t, uint32_t*), const uint8_t* f, size_t len) {
  uint32_t ip;
  return find(f, len, &ip) ? Ipv4Text(ip) : "";
}
std::string Found(bool (*find)(const uint8_t*, size_t, uint8_t*), const uint8_t* f, size_t len) {
  Addr a;
  a.len = 16;
  return find(f, len, a.bytes) ? AddrText(a) : "";
}

// name(frame) → the address `find` finds, or null.
template <typename Find>
Napi::Value SenderJs(const Napi::CallbackInfo& info, const char* name, Find find) {
  if (!IsBytes(info[0])) return ThrowType(info.Env(), std::string(name) + ": frame must be a Uint8Array");
  Napi::Uint8Array f = info[0].As<Napi::Uint8Array>();
  const std::string ip = Found(find, f.Data(), f.ByteLength());
  return ip.empty() ? info.Env().Null() : Napi::String::New(info.Env(), ip);
}

// name(frame, mac) → { target, reply }: the address `find` says the request asks about, and the `len`-byte answer
// `write` makes of it (what the TX thread writes to the bridge); null when the frame is not a request it answers.
template <typename Find>
Napi::Value AnswerJs(const Napi::CallbackInfo& info, const char* name, Find find, size_t len,
                     void (*write)(const uint8_t*, uint64_t, uint8_t*)) {
  Napi::Env env = info.Env();
  uint64_t mac;
  if (!IsBytes(info[0])) return ThrowType(env, std::string(name) + ": frame must be a Uint8Array");
  if (!GetMac(info[1], &mac)) return ThrowType(env, std::string(name) + ": mac must be aa:bb:cc:dd:ee:ff");
  Napi::Uint8Array f = info[0].As<Napi::Uint8Array>();
  const std::string target = Found(find, f.Data(), f.ByteLength());
  if (target.empty()) return env.Null();
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, len);
  write(f.Data(), mac, out.Data());
  Napi::Object o = Napi::Object::New(env);
  o.Set("target", target);
  o.Set("reply", out);
  return o;
}

// senderIpv4(frame) → the address the sender uses, or null. Twin: senderIpv4 in src/packet/neighbor.ts; pinned by
// test/native/arp.test.ts.
Napi::Value SenderIpv4Js(const Napi::CallbackInfo& info) { return SenderJs(info, "senderIpv4", SenderIpv4); }

// arpAnswer(frame, mac) → the reply the TX thread writes for an ARP request (60 bytes), or null when the frame is
// not one, with the address asked about as `target`. Twins: arpRequestTarget and arpReply in src/packet/neighbor.ts.
// Pinned by test/native/arp.test.ts.
Napi::Value ArpAnswerJs(const Napi::CallbackInfo& info) {
  return AnswerJs(info, "arpAnswer", ArpRequestTarget, kMinFrame, WriteArpReply);
}

// senderIpv6(frame) → the IPv6 address the sender uses, or null. Twin: senderIpv6 in src/packet/nd.ts; pinned by
// test/native/nd.test.ts.
Napi::Value SenderIpv6Js(const Napi::CallbackInfo& info) { return SenderJs(info, "senderIpv6", SenderIpv6); }

// ndAnswer(frame, mac) → the Neighbor Advertisement the TX thread writes for a Neighbor Solicitation (86 bytes), or
// null when the frame is not one it answers, with the address asked about as `target`. Twins: ndSolicitTarget and
// ndAdvertReply in src/packet/nd.ts. Pinned by test/native/nd.test.ts.
Napi::Value NdAnswerJs(const Napi::CallbackInfo& info) {
  return AnswerJs(info, "ndAnswer", NdSolicitTarget, kNaFrameLen, WriteNdAdvert);
}

// tooBigReply(frame, mtu) → the ICMP fragmentation-needed / ICMPv6 packet-too-big frame the TX thread writes back
// to the bridge for `frame` (WriteTooBig), or null when it answers none. Twin: tooBigReply in src/packet/icmp.ts;
// pinned by test/native/icmp.test.ts.
Napi::Value TooBigReplyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t mtu;
  if (!IsBytes(info[0])) return ThrowType(env, "tooBigReply: frame must be a Uint8Array");
  if (!GetUint(info[1], 0xffffffffu, &mtu)) return ThrowType(env, "tooBigReply: mtu must be an unsigned integer");
  Napi::Uint8Array f = info[0].As<Napi::Uint8Array>();
  uint8_t out[kMaxTooBigFrame];
  const size_t n = WriteTooBig(f.Data(), f.ByteLength(), mtu, out);
  return n == 0 ? env.Null() : Napi::Buffer<uint8_t>::Copy(env, out, n).As<Napi::Value>();
}

// clampMss(frame, ipv4, ipv6, ipMtu?) → { result: 'none' | 'clamped' | 'malformed', frame } (a copy, clamped in place
// as the engine threads do; with ipMtu, to ClampForPath of it first, as toward a peer with a measured path). Twin:
// clampMss (and clampForPath) in src/packet/tcp-mss.ts; pinned by test/native/mss.test.ts.
Napi::Value ClampMssJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t v4, v6;
  if (!IsBytes(info[0])) return ThrowType(env, "clampMss: frame must be a Uint8Array");
  if (!GetUint(info[1], 65535, &v4) || !GetUint(info[2], 65535, &v6)) return ThrowType(env, "clampMss: ipv4 and ipv6 must be 0-65535");
  uint32_t ip_mtu = 0;
  if (info.Length() > 3 && !info[3].IsUndefined() && !GetUint(info[3], 65535, &ip_mtu)) return ThrowType(env, "clampMss: ipMtu must be 0-65535");
  Napi::Uint8Array in = info[0].As<Napi::Uint8Array>();
  Napi::Buffer<uint8_t> f = Napi::Buffer<uint8_t>::Copy(env, in.Data(), in.ByteLength());
  MssClamp clamp{static_cast<uint16_t>(v4), static_cast<uint16_t>(v6)};
  if (info.Length() > 3 && !info[3].IsUndefined()) clamp = ClampForPath(clamp, ip_mtu);
  const MssResult r = ClampMss(f.Data(), f.Length(), clamp);
  Napi::Object o = Napi::Object::New(env);
  o.Set("result", r == MssResult::kClamped ? "clamped" : r == MssResult::kMalformed ? "malformed" : "none");
  o.Set("frame", f);
  return o;
}

// tooBigLimiter(rate, burst, times) → for each time (ms, non-decreasing), whether the TooBigLimiter lets an answer
// go. Twin: TooBigLimiter in src/packet/icmp.ts; pinned by test/native/icmp.test.ts.
Napi::Value TooBigLimiterJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t rate, burst;
  if (!GetUint(info[0], 1000000, &rate) || !GetUint(info[1], 1000000, &burst) || !info[2].IsArray())
    return ThrowType(env, "tooBigLimiter: (rate, burst, times[])");
  TooBigLimiter l(rate, burst);
  const Napi::Array times = info[2].As<Napi::Array>();
  Napi::Array out = Napi::Array::New(env, times.Length());
  for (uint32_t i = 0; i < times.Length(); i++) {
    uint32_t t;
    if (!GetUint(times.Get(i), 0x7fffffffu, &t)) return ThrowType(env, "tooBigLimiter: times must be integers (ms)");
    out.Set(i, Napi::Boolean::New(env, l.Take(t)));
  }
  return out;
}

// probeReply(datagram) → the 24-byte reply the RX thread sends to a probe request (WriteProbeReply), or null when it
// is not a well-formed request; isProbe(datagram) → whether the RX thread takes it for a probe. Twins: probeReply and
// isProbe in src/packet/probe.ts; pinned by test/native/probe.test.ts.
Napi::Value ProbeReplyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsBytes(info[0])) return ThrowType(env, "probeReply: datagram must be a Uint8Array");
  Napi::Uint8Array p = info[0].As<Napi::Uint8Array>();
  uint8_t out[kProbeHeaderLen];
  const size_t n = WriteProbeReply(p.Data(), p.ByteLength(), out);
  return n == 0 ? env.Null() : Napi::Buffer<uint8_t>::Copy(env, out, n).As<Napi::Value>();
}
Napi::Value IsProbeJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsBytes(info[0])) return ThrowType(env, "isProbe: datagram must be a Uint8Array");
  Napi::Uint8Array p = info[0].As<Napi::Uint8Array>();
  return Napi::Boolean::New(env, IsProbe(p.Data(), p.ByteLength()));
}

// learnScript({ agingMs, maxPerPeer, maxTotal }, steps) → one result per step, run through a LearnTable (learn.h).
// Steps: ['table', [{ vni, peers }]] (RetainPeers) → null; ['learn', vni, mac, vtep, nowMs] → 'known' | 'learned' |
// 'full'; ['lookup', vni, mac, nowMs] → vtep or null; ['sweep', nowMs] (Expire until a sweep ends) → entries held.
// Twin: ForwardingTable (load, learn, lookup, expire, learnedCount) in src/fdb/fdb.ts; pinned by
// test/native/learn.test.ts.
Napi::Value LearnScriptJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t aging, per_peer, total;
  if (!info[0].IsObject() || !info[1].IsArray()) return ThrowType(env, "learnScript: (options, steps[])");
  const Napi::Object o = info[0].As<Napi::Object>();
  if (!GetUint(o.Get("agingMs"), 0x7fffffffu, &aging) || !GetUint(o.Get("maxPerPeer"), kMaxLearned, &per_peer) ||
      !GetUint(o.Get("maxTotal"), kMaxLearned, &total))
    return ThrowType(env, "learnScript: options must be { agingMs, maxPerPeer, maxTotal }");
  LearnTable table(aging, static_cast<int>(per_peer), static_cast<int>(total));
  const Napi::Array steps = info[1].As<Napi::Array>();
  Napi::Array out = Napi::Array::New(env, steps.Length());
  for (uint32_t i = 0; i < steps.Length(); i++) {
    if (!steps.Get(i).IsArray()) return ThrowType(env, "learnScript: each step must be an array");
    const Napi::Array st = steps.Get(i).As<Napi::Array>();
    const std::string op = st.Get(0u).IsString() ? st.Get(0u).As<Napi::String>().Utf8Value() : "";
    uint32_t vni = 0, now = 0;
    uint64_t mac = 0;
    Addr vtep;
    if (op == "table" && st.Get(1u).IsArray()) {
      Table t;
      const Napi::Array vnis = st.Get(1u).As<Napi::Array>();
      for (uint32_t k = 0; k < vnis.Length(); k++) {
        const Napi::Object v = vnis.Get(k).As<Napi::Object>();
        if (!GetUint(v.Get("vni"), kMaxVni, &vni) || !v.Get("peers").IsArray()) return ThrowType(env, "learnScript: table entries are { vni, peers }");
        VniTable& vt = t.vnis[vni];
        const Napi::Array peers = v.Get("peers").As<Napi::Array>();
        for (uint32_t j = 0; j < peers.Length(); j++) {
          if (!GetAddr(peers.Get(j), &vtep)) return ThrowType(env, "learnScript: peers must be IP addresses");
          vt.sources.insert(vtep);
        }
      }
      table.RetainPeers(t);
      out.Set(i, env.Null());
    } else if (op == "learn" && GetUint(st.Get(1u), kMaxVni, &vni) && st.Get(2u).IsString() &&
               ParseMac(st.Get(2u).As<Napi::String>().Utf8Value().c_str(), &mac) && GetAddr(st.Get(3u), &vtep) &&
               GetUint(st.Get(4u), 0x7fffffffu, &now)) {
      const LearnTable::Sighting s{vni, mac, vtep};
      LearnTable::Verdict v = LearnTable::kKnown;
      table.LearnBatch(&s, 1, now, &v);
      out.Set(i, v == LearnTable::kKnown ? "known" : v == LearnTable::kLearned ? "learned" : "full");
    } else if (op == "lookup" && GetUint(st.Get(1u), kMaxVni, &vni) && st.Get(2u).IsString() &&
               ParseMac(st.Get(2u).As<Napi::String>().Utf8Value().c_str(), &mac) && GetUint(st.Get(3u), 0x7fffffffu, &now)) {
      Peer p;
      const bool found = LearnTable::Reader(table).Lookup(vni, mac, now, &p);
      out.Set(i, found ? Napi::Value(Napi::String::New(env, AddrText(p.addr))) : env.Null());
    } else if (op == "sweep" && GetUint(st.Get(1u), 0x7fffffffu, &now)) {
      while (!table.Expire(now)) {
      }
      out.Set(i, static_cast<double>(table.Size()));
    } else {
      return ThrowType(env, "learnScript: unknown or malformed step " + std::to_string(i));
    }
  }
  return out;
}

// flowSockets({ local, idleMs, max }, steps) → one result per step, run through one FlowSockets (udp-socket.h) on a
// clock the steps give: ['get', port, nowMs] → 'open' | 'taken' | 'full' (Get: a socket bound to local:port, or why
// the raw socket is used), ['sweep', nowMs] → sockets closed (CloseIdle), ['open'] → sockets open, ['free', port] →
// whether local:port can be bound now (its socket was closed). Every socket closes when it returns. No TypeScript
// twin (the JS engine has no GSO); pinned by test/native/offload.test.ts.
Napi::Value FlowSocketsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "flowSockets: options must be { local, idleMs, max } and steps ['get', port, nowMs] | ['sweep', nowMs] | ['open'] | ['free', port]";
  if (!info[0].IsObject() || !info[1].IsArray()) return ThrowType(env, usage);
  Napi::Object o = info[0].As<Napi::Object>();
  Addr local;
  uint32_t idle, max;
  if (!GetAddr(o.Get("local"), &local) || !GetUint(o.Get("idleMs"), 0x7fffffffu, &idle) ||
      !GetUint(o.Get("max"), FlowSockets::kMax, &max))
    return ThrowType(env, usage);
  FlowSockets socks(idle, max);
  Napi::Array steps = info[1].As<Napi::Array>();
  Napi::Array out = Napi::Array::New(env, steps.Length());
  for (uint32_t i = 0; i < steps.Length(); i++) {
    if (!steps.Get(i).IsArray()) return ThrowType(env, usage);
    Napi::Array st = steps.Get(i).As<Napi::Array>();
    const std::string op = st.Get(0u).IsString() ? st.Get(0u).As<Napi::String>().Utf8Value() : "";
    uint32_t port = 0, now = 0;
    if (op == "get" && GetUint(st.Get(1u), 65535, &port) && GetUint(st.Get(2u), 0x7fffffffu, &now)) {
      FlowSockets::Miss miss;
      const FlowSockets::Socket s = socks.Get(local, static_cast<uint16_t>(port), now, &miss);
      out.Set(i, s ? "open" : miss == FlowSockets::Miss::kFull ? "full" : "taken");
    } else if (op == "sweep" && GetUint(st.Get(1u), 0x7fffffffu, &now)) {
      out.Set(i, static_cast<double>(socks.CloseIdle(now)));
    } else if (op == "open") {
      out.Set(i, static_cast<double>(socks.open()));
    } else if (op == "free" && GetUint(st.Get(1u), 65535, &port)) {
      UniqueFd probe(socket(local.len == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      sockaddr_storage sa;
      const socklen_t salen = ToSockaddr(local, static_cast<uint16_t>(port), &sa);
      out.Set(i, probe.valid() && bind(probe.get(), reinterpret_cast<sockaddr*>(&sa), salen) == 0);
    } else {
      return ThrowType(env, usage);
    }
  }
  return out;
}

}  // namespace

void RegisterTwins(Napi::Env env, Napi::Object exports) {
  const std::pair<const char*, Napi::Function::Callback> twins[] = {
      {"encapsulate", EncapsulateJs}, {"flowPort", FlowPortJs},           {"classifyDatagram", ClassifyDatagramJs},
      {"segmentTso", SegmentTsoJs},   {"mergeSegments", MergeSegmentsJs}, {"senderIpv4", SenderIpv4Js},
      {"arpAnswer", ArpAnswerJs},     {"senderIpv6", SenderIpv6Js},       {"ndAnswer", NdAnswerJs},
      {"learnScript", LearnScriptJs},
      {"gsoPolicy", GsoPolicyJs},     {"flowSockets", FlowSocketsJs},
      {"tooBigReply", TooBigReplyJs}, {"tooBigLimiter", TooBigLimiterJs},
      {"clampMss", ClampMssJs},
      {"probeReply", ProbeReplyJs},   {"isProbe", IsProbeJs},
      {"outerChecksumVerified", OuterChecksumVerifiedJs},
  };
  for (const auto& [name, fn] : twins) exports.Set(name, Napi::Function::New(env, fn, name));
}

}  // namespace vxr
