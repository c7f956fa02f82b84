// compose.yaml and the Dockerfile, checked without a Docker engine: `docker-compose config`
// validates and normalises the compose file, and the Dockerfile is read as text.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { delimiter, dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DEFAULT_NATS_URL } from "../streams/catalogue.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const COMPOSE_FILE = join(ROOT, "compose.yaml");
const DOCKERFILE = join(ROOT, "Dockerfile");
// compose publishes NATS where the dfs CLI looks by default, so `dfs` on the host just works.
const NATS_PORT = Number(new URL(DEFAULT_NATS_URL).port);

// ---------------------------------------------------------------------------------------
// docker-compose

function findDockerCompose(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/bin", "/usr/local/bin"];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, "docker-compose");
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

function requireDockerCompose(): string {
  const bin = findDockerCompose();
  if (!bin) {
    assert.unreachable(
      "docker-compose is not installed, so compose.yaml cannot be validated. " +
        ".ci/run installs it (Debian's package: `apt-get install -y docker-compose`, no engine needed).",
    );
  }
  return bin!;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function compose(bin: string, args: string[]): Run {
  const out = spawnSync(bin, ["-f", COMPOSE_FILE, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
    // A fixed project name keeps the output independent of the checkout's folder name.
    env: { ...process.env, COMPOSE_PROJECT_NAME: "dfs" },
  });
  if (out.error) throw out.error;
  return { status: out.status, stdout: out.stdout, stderr: out.stderr };
}

/** The interpreter docker-compose 1.x runs under (its shebang), which has PyYAML. */
function pythonFor(bin: string): string {
  try {
    const first = readFileSync(bin, "utf8").split("\n", 1)[0] ?? "";
    const m = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
    if (m) {
      const exe = m[1]!.endsWith("/env") && m[2] ? m[2] : m[1]!;
      if (/python/.test(exe)) return exe;
    }
  } catch {
    // a binary (Compose v2): fall through
  }
  return "python3";
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

/**
 * The normalised compose file as JSON. Compose v2 prints JSON with `config --format json`;
 * docker-compose 1.29.2 has no such option (it prints its usage on stderr and still exits
 * 0), so its YAML output is read with the PyYAML it depends on.
 */
function normalisedConfig(bin: string, yamlText: string): Obj {
  const json = compose(bin, ["config", "--format", "json"]);
  if (json.status === 0 && json.stdout.trim().startsWith("{")) {
    try {
      return JSON.parse(json.stdout) as Obj;
    } catch {
      // not JSON after all: use the YAML route
    }
  }
  const py = spawnSync(
    pythonFor(bin),
    ["-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
    { input: yamlText, encoding: "utf8", timeout: 30_000 },
  );
  if (py.error || py.status !== 0) {
    assert.unreachable(`cannot read docker-compose's YAML output with PyYAML: ${py.error?.message ?? py.stderr}`);
  }
  return JSON.parse(py.stdout) as Obj;
}

// ---------------------------------------------------------------------------------------
// reading the normalised services

const isObj = (v: Json | undefined): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function argv(command: Json | undefined): string[] {
  if (Array.isArray(command)) return command.map(String);
  if (typeof command === "string") return command.trim().split(/\s+/).filter(Boolean);
  return [];
}

/** The value of `--flag VALUE` or `--flag=VALUE` in argv. */
function flag(args: string[], ...names: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    for (const name of names) {
      if (a === name) return args[i + 1];
      if (a.startsWith(`${name}=`)) return a.slice(name.length + 1);
    }
  }
  return undefined;
}

function environment(service: Obj): Record<string, string> {
  const env = service.environment;
  const out: Record<string, string> = {};
  if (Array.isArray(env)) {
    for (const item of env) {
      const [k, ...v] = String(item).split("=");
      out[k!] = v.join("=");
    }
  } else if (isObj(env)) {
    for (const [k, v] of Object.entries(env)) out[k] = v === null ? "" : String(v);
  }
  return out;
}

interface Mount {
  type: "volume" | "bind";
  source: string;
  target: string;
}

function mounts(service: Obj): Mount[] {
  const list = Array.isArray(service.volumes) ? service.volumes : [];
  return list.map((v): Mount => {
    if (isObj(v)) {
      const source = String(v.source ?? "");
      const type = v.type === "bind" ? "bind" : "volume";
      return { type, source, target: String(v.target ?? "") };
    }
    const parts = String(v).split(":");
    if (parts.length === 1) return { type: "volume", source: "", target: parts[0]! }; // anonymous
    const source = parts[0]!;
    const bind = source.startsWith("/") || source.startsWith(".") || source.startsWith("~");
    return { type: bind ? "bind" : "volume", source, target: parts[1]! };
  });
}

function dependsOn(service: Obj): string[] {
  const d = service.depends_on;
  if (Array.isArray(d)) return d.map(String);
  if (isObj(d)) return Object.keys(d);
  return [];
}

function publishedPorts(service: Obj): { published: number; target: number }[] {
  const ports = Array.isArray(service.ports) ? service.ports : [];
  return ports.map((p) => {
    if (isObj(p)) return { published: Number(p.published), target: Number(p.target) };
    const parts = String(p).split("/")[0]!.split(":");
    return { published: Number(parts.length > 1 ? parts[parts.length - 2] : NaN), target: Number(parts[parts.length - 1]) };
  });
}

const OFFICIAL_NATS = /^(?:docker\.io\/)?(?:library\/)?nats(?::[\w.-]+)?(?:@sha256:[0-9a-f]+)?$/;

// ---------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Instructions of a Dockerfile: comments dropped, `\` continuations joined. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buffer = "";
  let start = 0;
  text.split("\n").forEach((raw, index) => {
    const line = raw.replace(/\r$/, "");
    if (!buffer && /^\s*(#|$)/.test(line)) return;
    if (buffer && /^\s*#/.test(line)) return; // comment inside a continuation
    if (!buffer) start = index + 1;
    if (/\\\s*$/.test(line)) {
      buffer += `${line.replace(/\\\s*$/, "")} `;
      return;
    }
    buffer += line;
    const m = /^\s*(\w+)\s*(.*)$/s.exec(buffer);
    if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buffer = "";
  });
  return out;
}

/** Sources and destination of COPY/ADD, the flags (--from=..., --chown=...) apart. */
function copyArgs(args: string): { flags: Record<string, string>; sources: string[]; dest: string } {
  const flags: Record<string, string> = {};
  let rest = args;
  for (;;) {
    const m = /^--([\w-]+)(?:=(\S*))?\s+/.exec(rest);
    if (!m) break;
    flags[m[1]!] = m[2] ?? "";
    rest = rest.slice(m[0].length);
  }
  const words: string[] = rest.startsWith("[") ? (JSON.parse(rest) as string[]) : rest.split(/\s+/).filter(Boolean);
  return { flags, sources: words.slice(0, -1), dest: words[words.length - 1] ?? "" };
}

function dockerignore(): string[] {
  const file = join(ROOT, ".dockerignore");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#") && !l.startsWith("!"))
    .map((l) => l.replace(/^\/+/, "").replace(/\/+$/, ""));
}

// ---------------------------------------------------------------------------------------

const Compose = suite("compose.yaml");

let composeBin = "";
let config: Obj = {};

Compose.before(() => {
  assert.ok(existsSync(COMPOSE_FILE), "compose.yaml is missing at the project root");
});

Compose("docker-compose config accepts the file", () => {
  composeBin = requireDockerCompose();
  const run = compose(composeBin, ["config"]);
  assert.is(run.status, 0, `docker-compose -f compose.yaml config exited ${run.status}:\n${run.stderr}`);
  assert.ok(run.stdout.includes("services:"), `unexpected output of docker-compose config:\n${run.stdout}`);
  config = normalisedConfig(composeBin, run.stdout);
  assert.ok(isObj(config.services), "the normalised file has no services");
});

function services(): [string, Obj][] {
  assert.ok(isObj(config.services), "docker-compose config did not run (see the first failure)");
  return Object.entries(config.services as Obj).filter((e): e is [string, Obj] => isObj(e[1]));
}

/** The NATS servers: three, on the official image, as one cluster. */
function natsServices(): [string, Obj][] {
  const found = services().filter(([, s]) => typeof s.image === "string" && OFFICIAL_NATS.test(s.image));
  assert.is(found.length, 3, `expected three services on the official nats image, found ${found.map(([n]) => n).join(", ") || "none"}`);
  return found;
}

const role = (name: string) => services().filter(([, s]) => argv(s.command)[0] === name);

Compose("three NATS services on the official image, one JetStream cluster, each store on its own named volume", () => {
  const nats = natsServices();
  const names = new Set(nats.map(([name]) => name));
  const volumes = new Set<string>();
  const serverNames = new Set<string>();
  for (const [name, server] of nats) {
    assert.not.ok(server.build, `${name} must use the official image, not a build`);
    const args = argv(server.command);
    assert.ok(args.includes("-js") || args.includes("--jetstream"), `${name} must enable JetStream (-js or --jetstream): ${args.join(" ")}`);
    const store = flag(args, "-sd", "--store_dir");
    assert.ok(store, `${name} must give JetStream a store dir (-sd / --store_dir)`);
    const mount = mounts(server).find((m) => m.target === store);
    assert.ok(mount && mount.type === "volume" && mount.source, `the JetStream store dir ${store} of ${name} must be a named volume`);
    assert.not.ok(volumes.has(mount!.source!), `${mount!.source} is shared by two servers`);
    volumes.add(mount!.source!);
    // A cluster: a name, one cluster name, routes to every other server.
    const serverName = flag(args, "--server_name", "-n", "--name");
    assert.ok(serverName && !serverNames.has(serverName), `${name} needs a server name of its own`);
    serverNames.add(serverName!);
    assert.is(flag(args, "--cluster_name"), "dfs", `${name} joins the cluster "dfs"`);
    const routes = (flag(args, "--routes") ?? "").split(",").map((r) => new URL(r).hostname);
    assert.equal(routes.sort(), [...names].filter((n) => n !== name).sort(), `${name} routes to the other two`);
  }
  const published = nats.flatMap(([, server]) => publishedPorts(server).filter((p) => p.target === NATS_PORT).map((p) => p.published));
  assert.ok(published.includes(NATS_PORT), `one server is published on ${NATS_PORT} (so \`DFS_NATS=nats://127.0.0.1:${NATS_PORT} dfs ...\` works): ${published}`);
  assert.is(new Set(published).size, 3, "each server on its own host port");
});

Compose("two master services running `dfs master`, and the streams with three replicas", () => {
  const masters = role("master");
  assert.is(masters.length, 2, `expected two masters, found ${masters.map(([n]) => n).join(", ") || "none"}`);
  const provision = role("provision");
  assert.is(flag(argv(provision[0]![1].command), "--stream-replicas"), "3");
});

Compose("three workers, each with a distinct --id and its own named volume as --data", () => {
  const workers = role("worker");
  assert.is(workers.length, 3, `expected three workers, found ${workers.map(([n]) => n).join(", ") || "none"}`);
  const ids = new Set<string>();
  const volumes = new Set<string>();
  for (const [name, worker] of workers) {
    const args = argv(worker.command);
    const id = flag(args, "--id");
    assert.ok(id, `${name} has no --id`);
    assert.ok(/^[A-Za-z0-9_-]+$/.test(id!), `${name}: worker id ${id} must be letters, digits, _ and -`);
    assert.not.ok(ids.has(id!), `worker id ${id} is used twice`);
    ids.add(id!);

    const data = flag(args, "--data");
    assert.ok(data, `${name} has no --data (it would keep pieces inside the container)`);
    assert.ok(isAbsolute(data!), `${name}: --data ${data} should be an absolute path in the container`);
    const mount = mounts(worker).find((m) => m.target === data);
    assert.ok(mount, `${name}: --data ${data} is not a mounted volume`);
    assert.is(mount!.type, "volume", `${name}: ${data} must be a named volume`);
    assert.ok(mount!.source, `${name}: ${data} is an anonymous volume; give it a name`);
    assert.not.ok(volumes.has(mount!.source), `volume ${mount!.source} is shared by two workers`);
    volumes.add(mount!.source);
  }
});

Compose("every named volume is declared", () => {
  const declared = isObj(config.volumes) ? Object.keys(config.volumes) : [];
  for (const [name, service] of services()) {
    for (const m of mounts(service)) {
      if (m.type !== "volume" || !m.source) continue;
      assert.ok(declared.includes(m.source), `${name} mounts volume ${m.source}, which is not declared under volumes:`);
    }
  }
});

Compose("every dfs service is built from the project's Dockerfile and talks to every nats service", () => {
  const natsNames = natsServices().map(([name]) => name);
  const dfs = [...role("master"), ...role("worker")];
  assert.ok(dfs.length > 0, "no dfs services");
  for (const [name, service] of dfs) {
    const build = service.build;
    assert.ok(build, `${name} must be built from the project (build: .), not ${JSON.stringify(service.image)}`);
    const context = resolve(ROOT, typeof build === "string" ? build : String((build as Obj).context ?? "."));
    assert.is(context, ROOT, `${name} builds from ${context}, not the project root`);
    const dockerfile = isObj(build) && typeof build.dockerfile === "string" ? build.dockerfile : "Dockerfile";
    assert.is(resolve(context, dockerfile), DOCKERFILE, `${name} must use the project's Dockerfile`);

    const url = flag(argv(service.command), "--nats") ?? environment(service).DFS_NATS;
    assert.ok(url, `${name} sets neither --nats nor DFS_NATS (it would look for NATS on its own localhost)`);
    // Every server, so that it rides through the loss of one.
    const hosts = url!.split(",").map((u) => new URL(u.trim().includes("://") ? u.trim() : `nats://${u.trim()}`));
    assert.equal(hosts.map((h) => h.hostname).sort(), [...natsNames].sort(), `${name} must be given every NATS server: ${url}`);
    assert.ok(hosts.every((h) => Number(h.port || NATS_PORT) === NATS_PORT), `${name} points at the client port of each server`);
    for (const nats of natsNames) assert.ok(dependsOn(service).includes(nats), `${name} should depend on ${nats}`);
  }
});

Compose("authentication on: the server loads the generated config, every role runs with its own credentials", () => {
  const credsVolume = (name: string, service: Obj) => {
    const mount = mounts(service).find((m) => m.target === "/creds");
    assert.ok(mount && mount.type === "volume" && mount.source === "creds", `${name} must mount the creds volume at /creds`);
  };
  for (const [natsName, nats] of natsServices()) {
    const config = flag(argv(nats.command), "-c", "--config");
    assert.ok(config?.startsWith("/creds/"), `${natsName} must load the auth config that \`dfs creds init\` writes: ${argv(nats.command).join(" ")}`);
    credsVolume(natsName, nats);
  }
  const init = role("creds");
  assert.is(init.length, 1, "one one-shot service runs `dfs creds init`");
  assert.is(argv(init[0]![1].command)[1], "init");
  credsVolume(init[0]![0], init[0]![1]);
  const provision = role("provision");
  assert.is(provision.length, 1, "one one-shot service runs `dfs provision`");
  assert.is(flag(argv(provision[0]![1].command), "--creds"), "/creds/admin.creds", "streams are made by the admin");
  for (const [name, service] of [...role("master"), ...role("worker")]) {
    const args = argv(service.command);
    const expected = args[0] === "master" ? "/creds/master.creds" : `/creds/worker-${flag(args, "--id")}.creds`;
    assert.is(flag(args, "--creds"), expected, `${name} must run with its own role's credentials`);
    credsVolume(name, service);
  }
});

Compose.run();

// ---------------------------------------------------------------------------------------

const Docker = suite("Dockerfile");

const read = () => {
  assert.ok(existsSync(DOCKERFILE), "Dockerfile is missing at the project root");
  return instructions(readFileSync(DOCKERFILE, "utf8"));
};

Docker("builds on node:20-bookworm-slim", () => {
  const froms = read().filter((i) => i.op === "FROM");
  assert.ok(froms.length > 0, "no FROM");
  const stages = new Set<string>();
  for (const from of froms) {
    const words = from.args.split(/\s+/).filter((w) => !w.startsWith("--"));
    const image = words[0]!;
    if (!stages.has(image.toLowerCase())) {
      assert.ok(/^(?:docker\.io\/)?(?:library\/)?node:20[\w.-]*-bookworm-slim$/.test(image), `line ${from.line}: base image ${image} is not node:20-bookworm-slim`);
    }
    if (words[1]?.toUpperCase() === "AS" && words[2]) stages.add(words[2].toLowerCase());
  }
});

Docker("everything it copies from the context exists and is not .dockerignored", () => {
  const ignored = dockerignore();
  const copies = read().filter((i) => i.op === "COPY" || i.op === "ADD");
  assert.ok(copies.length > 0, "the Dockerfile copies nothing");
  const copied = new Set<string>();
  for (const c of copies) {
    const { flags, sources } = copyArgs(c.args);
    if ("from" in flags) continue; // from another stage
    assert.ok(sources.length > 0, `line ${c.line}: ${c.op} without a source`);
    for (const src of sources) {
      const rel = src.replace(/^\.\//, "").replace(/\/+$/, "");
      assert.not.ok(isAbsolute(src) || rel.startsWith(".."), `line ${c.line}: ${src} is outside the build context`);
      if (/[*?[]/.test(rel)) continue;
      assert.ok(existsSync(join(ROOT, rel)), `line ${c.line}: ${c.op} ${src}: no such file in the project`);
      const top = rel.split("/")[0]!;
      assert.not.ok(ignored.includes(rel) || ignored.includes(top), `line ${c.line}: ${src} is excluded by .dockerignore`);
      copied.add(rel === "" || rel === "." ? "." : top);
    }
  }
  const tsconfig = JSON.parse(readFileSync(join(ROOT, "tsconfig.json"), "utf8")) as { include?: string[] };
  const needed = ["package.json", "package-lock.json", "tsconfig.json", "bin", ...(tsconfig.include ?? []).map((d) => d.split("/")[0]!)];
  for (const n of needed) {
    assert.ok(copied.has(n) || copied.has("."), `the image needs ${n} (npm ci builds dist/ with tsc from it) but the Dockerfile does not copy it`);
  }
});

Docker("npm ci runs with the dev dependencies (prepare runs tsc) and the entrypoint is the dfs CLI", () => {
  const all = read();
  const runs = all.filter((i) => i.op === "RUN").map((i) => i.args);
  const ci = runs.find((r) => /\bnpm\s+ci\b/.test(r));
  assert.ok(ci, "no RUN npm ci");
  assert.not.ok(/npm\s+ci\b[^&;|]*(--omit[= ]dev|--production|--only[= ]prod|--ignore-scripts)/.test(ci!), `\`${ci}\` would skip typescript or the prepare script that builds dist/`);
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
    scripts?: Record<string, string>;
    devDependencies?: Record<string, string>;
    dependencies?: Record<string, string>;
  };
  if (/\btsc\b/.test(pkg.scripts?.prepare ?? "")) {
    assert.ok(pkg.devDependencies?.typescript || pkg.dependencies?.typescript, "prepare runs tsc but typescript is not a dependency");
  }

  const entry = all.filter((i) => i.op === "ENTRYPOINT").at(-1);
  assert.ok(entry, "no ENTRYPOINT");
  assert.ok(entry!.args.startsWith("["), "ENTRYPOINT should use the exec form so signals reach node");
  assert.equal(JSON.parse(entry!.args), ["node", "bin/dfs.js"]);
  assert.ok(statSync(join(ROOT, "bin/dfs.js")).isFile(), "bin/dfs.js is missing");
  assert.ok(/dist\/client\/cli\.js/.test(readFileSync(join(ROOT, "bin/dfs.js"), "utf8")), "bin/dfs.js no longer loads dist/client/cli.js; check the build output path");
});

Docker(".dockerignore keeps local state out of the build context", () => {
  const ignored = dockerignore();
  for (const entry of ["node_modules", "dist", ".dfs", ".git"]) {
    assert.ok(ignored.includes(entry), `.dockerignore should list ${entry}`);
  }
});

Docker.run();
