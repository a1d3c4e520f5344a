#!/usr/bin/env -S node --max-semi-space-size=4
// Installed entry point: runs the compiled CLI (npm's `prepare` builds dist/).
// --max-semi-space-size=4 (MiB) caps V8's young generation, which otherwise grows to 16 MiB per
// semi-space under load. The mirror moves bytes through reused buffers and keeps few short-lived
// objects, so the small young generation costs little, and it keeps the peak memory of 50 concurrent
// cold downloads at about 125 MB instead of about 150 (bench/RESULTS.md). The Dockerfile and
// `npm start` pass the same flag.
import '../dist/cli/main.js';
