#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=2
// Installed entry point: runs the compiled CLI (npm's `prepare` builds dist/).
// --max-semi-space-size=2 (MiB) caps V8's young generation, which otherwise grows to 16 MiB per
// semi-space under load. The mirror moves bytes through reused buffers and keeps few short-lived
// objects, so the small young generation costs little; socket reads arrive as fresh buffers that a
// scavenge frees, and a smaller young generation scavenges sooner, which bounds peak memory under
// large pushes and downloads (measurements: bench/RESULTS.md and the commit that set it).
// MALLOC_ARENA_MAX=1: one glibc malloc arena instead of one per thread. V8's compiler and GC threads
// and libuv's thread pool each got an arena of their own, and glibc keeps what is freed in those for
// reuse instead of giving it back: 15-30 MB of RSS after load that nothing used again (peak RSS of
// 50 cold 1 GB downloads 145 -> 129 MB, of 4 concurrent pushes 148 -> 118, under the manifest load
// 164 -> 132; pull and throughput rows unchanged: bench/RESULTS.md). The Dockerfile and `npm start`
// set the same.
import '../dist/cli/main.js';
