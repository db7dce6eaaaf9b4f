// End-to-end tests: Debian's Chromium against the real worker under
// `wrangler dev` (fresh local D1 each run) and the demo site. Ports differ from
// `make dev` (8787/8080) so both can run at once.
import { defineConfig } from '@playwright/test';

export const EDGE = 'http://127.0.0.1:8788';
export const WWW = 'http://127.0.0.1:8081';

export default defineConfig({
  testDir: 'tests/e2e',
  timeout: 30_000,
  retries: 0,
  workers: 1,
  reporter: [['list']],
  // Widget screenshots are kept with the docs and compared with a tolerance.
  snapshotPathTemplate: 'docs/screenshots/{arg}{ext}',
  use: {
    baseURL: WWW,
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    },
  },
  webServer: [
    {
      command: `scripts/edge.sh 8788 .wrangler/test-state --fresh`,
      // The whole suite's browsers share 127.0.0.1; the IP limit's own test
      // sends past this from an IP of its own.
      env: { REFLOOP_EDGE_LIMITS: 'RATE_IP=3000' },
      url: `${EDGE}/healthz`,
      timeout: 120_000,
      reuseExistingServer: false,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      command: 'node www/serve.mjs',
      env: { PORT: '8081', REFLOOP_EDGE: EDGE, REFLOOP_KEY: 'pk_demo_refloop_public' },
      url: `${WWW}/`,
      timeout: 30_000,
      reuseExistingServer: false,
    },
  ],
});
