#!/usr/bin/env node
// The `dfs` command: runs the compiled CLI (npm builds it on install).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";

// The young generation stays small until a command that gains from a larger one says so
// (letYoungGenerationGrow in the CLI): a put's or a get's peak RSS is about 20 MB less.
setFlagsFromString("--semi-space-growth-factor=1");

const cli = fileURLToPath(new URL("../dist/client/cli.js", import.meta.url));
if (!existsSync(cli)) {
  process.stderr.write("dfs: INTERNAL: the CLI is not built; run `npm install` (or `npm run build`) in the dfs folder\n");
  process.exit(1);
}
const { main } = await import(cli);
await main(process.argv);
