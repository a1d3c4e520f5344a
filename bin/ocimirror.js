#!/usr/bin/env -S node --max-semi-space-size=2
// Installed entry point: runs the compiled CLI (npm's `prepare` builds dist/).
// --max-semi-space-size=2 (MiB) caps V8's young generation, which otherwise grows to 16 MiB per
// semi-space under load. The mirror moves bytes through reused buffers and keeps few short-lived
// objects, so the small young generation costs little; socket reads arrive as fresh buffers that a
// scavenge frees, and a smaller young generation scavenges sooner, which bounds peak memory under
// large pushes and downloads (measurements: bench/RESULTS.md and the commit that set it). The
// Dockerfile and `npm start` pass the same flag.
import '../dist/cli/main.js';
