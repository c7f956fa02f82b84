#!/usr/bin/env node
// The `dfs` command: runs the compiled CLI (npm builds it on install).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../dist/client/cli.js", import.meta.url));
if (!existsSync(cli)) {
  process.stderr.write("dfs: INTERNAL: the CLI is not built; run `npm install` (or `npm run build`) in the dfs folder\n");
  process.exit(1);
}
const { main } = await import(cli);
await main(process.argv);
