// Credentials in the NATS ecosystem's own form (operator mode): an operator signs a system
// account and the store's account; the account signs one user per role, whose JWT carries
// that role's permissions. Users are written as `.creds` files, as `nsc` writes them, so
// `nats --creds FILE` works too (as the file's first user: a master's or worker's file holds
// a second, its JetStream user, after it; see `usersOf`). The keys that sign stay in
// `<dir>/keys` (mode 0600): with the account key, `dfs creds add` signs more users while the
// server runs.
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
  fromSeed,
  type KeyPair,
} from "@nats-io/jwt";
import type { Catalogue } from "../streams/catalogue.js";
import { usersOf, userName, type RoleName } from "../streams/permissions.js";
import { DfsError, ErrorCodes } from "./errors.js";

/** The part of a nats-server config that turns authentication on (include it, or pass it with `-c`). */
export const SERVER_AUTH_FILE = "server.conf";
const KEYS = "keys";

interface Authority {
  operator: KeyPair;
  system: KeyPair;
  account: KeyPair;
}

// Unlimited, but every limit named: a limit left out of an account JWT refuses connections.
const ACCOUNT_LIMITS = {
  conn: -1,
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  leaf: -1,
  wildcards: true,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
};

async function writeSecret(path: string, text: string | Uint8Array): Promise<void> {
  await writeFile(path, text, { mode: 0o600 });
  await chmod(path, 0o600);
}

async function readSeed(dir: string, name: string): Promise<KeyPair | undefined> {
  const seed = await readFile(join(dir, KEYS, `${name}.nk`), "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  return seed === undefined ? undefined : fromSeed(new TextEncoder().encode(seed.trim()));
}

async function loadAuthority(dir: string): Promise<Authority | undefined> {
  const [operator, system, account] = await Promise.all(["operator", "system", "account"].map((name) => readSeed(dir, name)));
  return operator && system && account ? { operator, system, account } : undefined;
}

/** A new operator, system account and store account, and the server config that trusts them. */
async function createAuthority(dir: string): Promise<Authority> {
  const authority = { operator: createOperator(), system: createAccount(), account: createAccount() };
  await mkdir(join(dir, KEYS), { recursive: true, mode: 0o700 });
  for (const [name, kp] of Object.entries(authority)) await writeSecret(join(dir, KEYS, `${name}.nk`), kp.getSeed());
  const systemKey = authority.system.getPublicKey();
  const operatorJwt = await encodeOperator("dfs", authority.operator, { system_account: systemKey });
  const systemJwt = await encodeAccount("SYS", authority.system, {}, { signer: authority.operator });
  const accountJwt = await encodeAccount("DFS", authority.account, { limits: ACCOUNT_LIMITS }, { signer: authority.operator });
  const config = [
    "# nats-server authentication for dfs (operator mode), written by `dfs creds init`.",
    `operator: ${operatorJwt}`,
    `system_account: ${systemKey}`,
    "resolver: MEMORY",
    "resolver_preload: {",
    `  ${systemKey}: ${systemJwt}`,
    `  ${authority.account.getPublicKey()}: ${accountJwt}`,
    "}",
    "",
  ].join("\n");
  await writeSecret(join(dir, SERVER_AUTH_FILE), config);
  return authority;
}

/** Where the credentials of a role live in `dir`: `master.creds`, `worker-<id>.creds`, `client.creds`... */
export function credsFile(dir: string, role: RoleName, id?: string): string {
  return join(dir, `${userName(role, id)}.creds`);
}

/** Every user of a role, signed, one `.creds` block after the other. */
async function signUsers(authority: Authority, cat: Catalogue, role: RoleName, id?: string): Promise<string> {
  let file = "";
  for (const permissions of usersOf(cat, role, id)) {
    const user = createUser();
    const jwt = await encodeUser(permissions.user, user, authority.account, {
      pub: { allow: permissions.publish },
      sub: { allow: permissions.subscribe },
      ...(permissions.respond ? { resp: { max: 1, ttl: 0 } } : {}),
    });
    file += new TextDecoder().decode(fmtCreds(jwt, user));
  }
  return file;
}

export interface InitCredentialsOptions {
  /** Worker ids to make credentials for. */
  workers?: readonly string[];
}

/**
 * Make (or complete) a credentials folder: the authority and server config if missing, and
 * one `.creds` file per role (one per worker). Files already there are kept, but a master's or
 * worker's file made before roles had a JetStream user is signed again with both.
 */
export async function initCredentials(dir: string, cat: Catalogue, opts: InitCredentialsOptions = {}): Promise<string[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const authority = (await loadAuthority(dir)) ?? (await createAuthority(dir));
  const wanted: [RoleName, string?][] = [["master"], ["client"], ["auditor"], ["admin"], ...(opts.workers ?? []).map((id): [RoleName, string] => ["worker", id])];
  const written: string[] = [];
  for (const [role, id] of wanted) {
    const path = credsFile(dir, role, id);
    // None (no file to read: signed now); as many as the role has (kept); fewer (a file from
    // before roles had a JetStream user: signed again); not credentials at all (someone else's
    // business: left as it is).
    const users = await readCredentials(path).then(
      (found) => found.length,
      (err: DfsError) => (err.code === ErrorCodes.LOCAL_IO ? 0 : Infinity),
    );
    if (users >= usersOf(cat, role, id).length) continue;
    await writeSecret(path, await signUsers(authority, cat, role, id));
    written.push(path);
  }
  return written;
}

/** Sign one more user (a new worker, or a client of its own) with the folder's account key; replaces its file. */
export async function addCredentials(dir: string, cat: Catalogue, role: RoleName, id?: string): Promise<string> {
  const authority = await loadAuthority(dir);
  if (!authority) throw new DfsError(ErrorCodes.NOT_FOUND, `no signing keys in ${join(dir, KEYS)}: run \`dfs creds init ${dir}\` first`);
  const path = credsFile(dir, role, id);
  await writeSecret(path, await signUsers(authority, cat, role, id));
  return path;
}

/** One user of a `.creds` file: its own credentials block and the user name its JWT carries. */
export interface CredentialsUser {
  creds: Uint8Array;
  user: string;
}

const JWT_BEGIN = "-----BEGIN NATS USER JWT-----";

/** The users of a `.creds` file, in order: one, or a role's user and then its JetStream user. */
export async function readCredentials(path: string): Promise<CredentialsUser[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new DfsError(ErrorCodes.LOCAL_IO, `cannot read credentials ${path}: ${(err as Error).message}`, { cause: err });
  }
  const blocks = text.split(JWT_BEGIN).slice(1);
  try {
    if (blocks.length === 0) throw new Error("no user JWT");
    return blocks.map((block) => ({ creds: new TextEncoder().encode(JWT_BEGIN + block), user: userOf(block) }));
  } catch (err) {
    throw new DfsError(ErrorCodes.BAD_REQUEST, `${path} is not a NATS credentials file`, { cause: err });
  }
}

/**
 * The user name a `.creds` block's JWT carries, and a check that a seed follows it. The JWT's
 * signature is the server's to check: checking it here too (in JavaScript) cost every
 * command about 20 ms at start.
 */
function userOf(block: string): string {
  const jwt = /^\s*([\w-]+\.[\w-]+\.[\w-]+)\s*-{3,}END NATS USER JWT-{3,}/.exec(block)?.[1];
  if (!jwt) throw new Error("no user JWT");
  if (!/-{3,}BEGIN USER NKEY SEED-{3,}\s*SU[A-Z2-7]+\s*-{3,}END USER NKEY SEED-{3,}/.test(block)) throw new Error("no user seed");
  const claims = JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8")) as { name?: unknown };
  if (typeof claims.name !== "string" || claims.name === "") throw new Error("a user JWT without a name");
  return claims.name;
}
