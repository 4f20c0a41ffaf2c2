{
  "targets": [
    {
      "target_name": "vxlan_native",
      "sources": [
        "src/addon.cc",
        "src/arp.cc",
        "src/bench.cc",
        "src/engine.cc",
        "src/engine-handover.cc",
        "src/fd-passing.cc",
        "src/icmp.cc",
        "src/js-args.cc",
        "src/js-error.cc",
        "src/learn.cc",
        "src/links.cc",
        "src/links-js.cc",
        "src/local-macs.cc",
        "src/mss.cc",
        "src/nd.cc",
        "src/offload.cc",
        "src/probe.cc",
        "src/probe-engine.cc",
        "src/rx.cc",
        "src/stats.cc",
        "src/table.cc",
        "src/tap.cc",
        "src/fd-reader.cc",
        "src/tap-swap.cc",
        "src/twins.cc",
        "src/tx.cc",
        "src/udp-socket.cc",
        "src/uring.cc",
        "src/uring-ring.cc",
        "src/wire.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fno-exceptions"],
      "cflags": ["-O2"],
      "ldflags": ["-pthread"]
    }
  ]
}
