#!/usr/bin/env node
// media-gen's npm launcher: runs the native binary from the platform package
// npm installed beside this one (@media-gen/<os>-<cpu>, an optional
// dependency whose `os` and `cpu` fields make npm pick only the matching
// one), with the same arguments, environment and standard streams, so an MCP
// host talking JSON-RPC over stdio talks to the binary itself.
"use strict";

const { spawn } = require("node:child_process");
const path = require("node:path");

const PLATFORMS = {
  "darwin-arm64": "@media-gen/darwin-arm64",
  "darwin-x64": "@media-gen/darwin-x64",
  "linux-arm64": "@media-gen/linux-arm64",
  "linux-x64": "@media-gen/linux-x64",
};

function binaryPath() {
  const key = `${process.platform}-${process.arch}`;
  const pkg = PLATFORMS[key];
  if (!pkg) {
    throw new Error(
      `media-gen has no build for ${key} (there are: ${Object.keys(PLATFORMS).join(", ")}); ` +
        "build it from source with `cargo install --path .` (see the README)",
    );
  }
  try {
    return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), "bin", "media-gen");
  } catch {
    throw new Error(
      `the package ${pkg} (media-gen's binary for ${key}) is not installed: ` +
        "it is an optional dependency, so an install with --no-optional or --omit=optional " +
        `leaves it out; reinstall media-gen without that flag, or \`npm install ${pkg}\``,
    );
  }
}

let bin;
try {
  bin = binaryPath();
} catch (e) {
  process.stderr.write(`media-gen: ${e.message}\n`);
  process.exit(1);
}

const child = spawn(bin, process.argv.slice(2), { stdio: "inherit" });

const running = () => child.exitCode === null && child.signalCode === null;

// The host stops a server with a signal: pass it on and let the binary shut
// down as it does when run directly (it finishes in-flight work first).
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (running()) child.kill(signal);
  });
}

// Under `npx` the host's signal goes to npm, which does not pass it through
// the shell it starts this launcher with: npm ends and this process is left
// to init. A changed parent is that signal; stop the binary the same way.
const parent = process.ppid;
const watch = setInterval(() => {
  if (process.ppid !== parent) {
    clearInterval(watch);
    if (running()) child.kill("SIGTERM");
  }
}, 500);
watch.unref();

child.on("error", (e) => {
  process.stderr.write(`media-gen: could not start ${bin}: ${e.message}\n`);
  process.exit(1);
});

child.on("exit", (code, signal) => {
  if (signal) {
    // End the same way, so the caller sees the signal (not a plain status).
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code ?? 1);
  }
});
