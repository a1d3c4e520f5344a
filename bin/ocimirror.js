#!/usr/bin/env node
// Installed entry point: runs the compiled CLI (npm's `prepare` builds dist/).
import '../dist/cli/main.js';
