#!/usr/bin/env bash
# `npm run bpf`: compiles bpf/*.bpf.c into the committed bpf/*.bpf.o and regenerates the
# TypeScript layouts from them (src/datapath/tun/layouts.gen.ts). Needs clang and libbpf's
# headers (Debian: clang libbpf-dev); `npm ci` and `npm test` use the committed objects and
# need neither. The output is byte-for-byte reproducible with the same compiler: fixed flags,
# sources named relative to bpf/, and the DWARF (which records the build directory) stripped;
# the BTF that libbpf needs for the .maps definitions stays. bpfel: little-endian, as x86-64
# and arm64 are (one object for both).
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG=${CLANG:-clang}
STRIP=${STRIP:-llvm-strip}
# asm/types.h and friends: the host's multiarch UAPI directory (identical for x86-64 and arm64)
ARCH_INC=/usr/include/$(uname -m)-linux-gnu
(
  cd bpf
  for src in *.bpf.c; do
    obj=${src%.c}.o
    "$CLANG" -O2 -g -target bpfel -mcpu=v3 -std=gnu11 -Wall -Werror -fdebug-prefix-map="$PWD"=. -I"$ARCH_INC" -c "$src" -o "$obj"
    "$STRIP" --strip-debug --remove-section=.comment "$obj"
  done
)
npm run -s build
node scripts/gen-layouts.mjs
