import { defineConfig } from "vitest/config";

// Three projects: unit tests against a fake WebSocket, integration tests against the real
// `herald` binary (HERALD_BIN), and the example page in Chromium. The last two start servers
// of their own and run one file at a time, so that a small machine is not overloaded.
export default defineConfig({
  test: {
    projects: [
      {
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], environment: "node" },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 30_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
