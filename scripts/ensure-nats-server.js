#!/usr/bin/env node
// Makes sure Debian's nats-server is installed before the demo, `npm start` or the tests:
// installs it with apt-get when run as root, otherwise names the one command to run.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";

const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"];
const found = () => dirs.some((dir) => dir && existsSync(join(dir, "nats-server")));

if (!found()) {
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  const hasApt = existsSync("/usr/bin/apt-get");
  if (!root || !hasApt) {
    process.stderr.write("dfs needs nats-server (2.9 or later). Install it with:\n  sudo apt-get install -y nats-server\n");
    process.exit(1);
  }
  process.stderr.write("nats-server is missing: installing Debian's package (apt-get install -y nats-server)\n");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update"], { stdio: "inherit", env });
  execFileSync("apt-get", ["install", "-y", "nats-server"], { stdio: "inherit", env });
  if (!found()) {
    process.stderr.write("apt-get ran but nats-server is still missing\n");
    process.exit(1);
  }
}
