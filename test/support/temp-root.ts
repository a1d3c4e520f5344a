// vitest globalSetup: every temp dir of a test run lives under one directory, removed when the run
// ends. tmp.ts's exit handler never runs in vitest's worker processes (they are killed, not exited), so
// a test that fails before its cleanup, or forgets it, would otherwise leave registry data, layouts and
// data dirs in /tmp. The workers inherit TMPDIR, so os.tmpdir() and everything that honours TMPDIR
// (skopeo, podman, buildah given this environment) write under the run's directory.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Set while a run's root exists: vitest runs globalSetup once for the run and once per project. */
const MARK = 'OCIMIRROR_TEST_RUN_ROOT';

export default function tempRoot(): () => void {
  // One root per run, not one inside the other: socket paths under it must stay short.
  if (process.env[MARK] && process.env.TMPDIR === process.env[MARK]) return () => {};
  // Short: unix socket paths under it (containerd, dockerd) must stay below 108 bytes.
  const root = mkdtempSync(join(tmpdir(), 'ocimirror-run-'));
  process.env[MARK] = root;
  // Traversable by other users, as /tmp is: some tests run programs as an unprivileged uid.
  chmodSync(root, 0o755);
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = root;
  return () => {
    delete process.env[MARK];
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  };
}
