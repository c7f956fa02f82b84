// Remote paths: one canonical form, and a clear BAD_PATH for anything that is not a path.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DfsError, ErrorCodes, clipText, quote } from "../src/errors.js";
import { MAX_PATH_BYTES, MAX_SEGMENT_BYTES, baseName, isUnder, normalisePath, normalisePrefix } from "../src/paths.js";

const Paths = suite("paths");

function refused(input: unknown, normalise: (input: unknown) => string = normalisePath): void {
  const label = typeof input === "string" ? quote(input) : String(input);
  try {
    const out = normalise(input);
    assert.unreachable(`${label} was accepted as ${JSON.stringify(out)}`);
  } catch (err) {
    if (!(err instanceof DfsError)) throw err;
    assert.is(err.code, ErrorCodes.BAD_PATH, label);
    assert.ok(err.message.length > 0, `${label}: the error says why`);
    assert.ok(err.message.length < 600, `${label}: the error does not echo the whole input`);
  }
}

Paths("paths - a/b and /a/b name the same file, shown with a leading /", () => {
  assert.is(normalisePath("a/b"), "/a/b");
  assert.is(normalisePath("/a/b"), "/a/b");
  assert.is(normalisePath("a"), "/a");
  assert.is(normalisePath("/a"), "/a");
  assert.is(normalisePath("dir/sub/file.txt"), "/dir/sub/file.txt");
});

Paths("paths - a canonical path is its own canonical form", () => {
  for (const p of ["/a", "/a/b", "/x y/z.tar.gz", "/\u00e9t\u00e9/\u65e5\u672c"]) {
    assert.is(normalisePath(p), p);
    assert.is(normalisePath(normalisePath(p)), normalisePath(p));
  }
});

Paths("paths - decomposed Unicode is stored as NFC", () => {
  const decomposed = "cafe\u0301/re\u0301sume\u0301";
  const out = normalisePath(decomposed);
  assert.is(out, "/caf\u00e9/r\u00e9sum\u00e9");
  assert.is.not(out, "/" + decomposed);
  // Both spellings of the same name are the same file.
  assert.is(normalisePath("caf\u00e9"), normalisePath("cafe\u0301"));
});

Paths("paths - any other Unicode is kept as given", () => {
  const names = [
    "\u65e5\u672c\u8a9e/\u30d5\u30a1\u30a4\u30eb", // CJK and katakana
    "emoji-\u{1F600}.png", // astral plane
    "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439",
    "spaces in name/and\u00a0nbsp", // ordinary and no-break space
    "\u05e9\u05dc\u05d5\u05dd", // right-to-left script
    "odd chars !#$%&'()*+,;=@[]^`{}~",
    "...", // three dots is a name, not a special segment
    ".hidden/..also-a-name",
  ];
  for (const name of names) assert.is(normalisePath(name), "/" + name, name);
});

Paths("paths - refuses empty paths and the bare root", () => {
  refused("");
  refused("/");
});

Paths("paths - refuses empty segments, including a trailing or doubled slash", () => {
  refused("a//b");
  refused("/a//b");
  refused("//a");
  refused("a/");
  refused("/a/b/");
  refused("///");
});

Paths("paths - refuses . and .. segments", () => {
  refused(".");
  refused("..");
  refused("/.");
  refused("a/./b");
  refused("a/../b");
  refused("../etc/passwd");
  refused("a/..");
});

Paths("paths - refuses NUL and control characters", () => {
  refused("a\u0000b");
  refused("\u0000");
  refused("a\nb");
  refused("a\rb");
  refused("a\tb");
  refused("a\u001bb"); // ESC
  refused("a\u007fb"); // DEL
  refused("a\u0085b"); // C1 NEL
  refused("dir/\u0001/file");
});

Paths("paths - a path holds at most 4,096 bytes and a segment at most 255, counted in UTF-8 after NFC", () => {
  const segment = (bytes: number) => "s".repeat(bytes);
  const atLimit = Array.from({ length: 16 }, (_, i) => segment(i < 15 ? 255 : MAX_PATH_BYTES - 1 - 15 * 256)).join("/");
  assert.is(Buffer.byteLength(normalisePath(atLimit)), MAX_PATH_BYTES);
  refused(atLimit + "x");
  assert.is(normalisePath(segment(MAX_SEGMENT_BYTES)), "/" + segment(MAX_SEGMENT_BYTES));
  refused(segment(MAX_SEGMENT_BYTES + 1));
  refused("\u00e9".repeat(128), normalisePath); // 256 bytes in UTF-8, 128 characters
  assert.is(normalisePath("e\u0301".repeat(127)), "/" + "\u00e9".repeat(127), "counted after NFC: 254 bytes");
  refused("a/".repeat(300_000) + "b");
  refused("\u0001".repeat(200_000));
});

Paths("paths - refuses bidirectional overrides and isolates", () => {
  for (const c of ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]) refused(`invoice${c}fdp.exe`);
  assert.is(normalisePath("a\u200fb"), "/a\u200fb", "a plain right-to-left mark is not an override");
});

Paths("quote - short input is JSON-quoted, long input cut to 64 characters with its byte length", () => {
  assert.is(quote("a/b"), '"a/b"');
  assert.is(quote("a\nb"), '"a\\nb"');
  const long = quote("\u0001".repeat(200_000));
  assert.ok(long.length < 500, long);
  assert.match(long, /…" \(200000 bytes\)$/);
  assert.is(quote("x\u202ey"), '"x\\u202ey"', "bidi controls are escaped");
  assert.is(quote("\u{1F600}".repeat(40)).includes("\\ud83d"), false, "no half of a surrogate pair");
});

Paths("clipText - cuts to the limit with an ellipsis, never in a surrogate pair", () => {
  assert.is(clipText("short", 10), "short");
  assert.is(clipText("0123456789abc", 10), "012345678…");
  for (let max = 2; max < 10; max++) {
    const clipped = clipText("\u{1F600}".repeat(10), max);
    assert.ok(clipped.length <= max);
    assert.not.match(clipped, /[\ud800-\udbff](?![\udc00-\udfff])/, "no lone high surrogate");
  }
});

Paths("paths - refuses a non-string with BAD_PATH", () => {
  refused(undefined);
  refused(null);
  refused(42);
  refused(["a", "b"]);
});

Paths("paths - normalisePrefix: nothing, empty or / means everything", () => {
  assert.is(normalisePrefix(undefined), "/");
  assert.is(normalisePrefix(""), "/");
  assert.is(normalisePrefix("/"), "/");
});

Paths("paths - normalisePrefix: otherwise a prefix is a path", () => {
  assert.is(normalisePrefix("a"), "/a");
  assert.is(normalisePrefix("/a/b"), "/a/b");
  assert.is(normalisePrefix("cafe\u0301"), "/caf\u00e9");
  assert.is(normalisePrefix("/a/"), "/a", "one trailing slash names the directory");
  refused("a//b", normalisePrefix);
  refused("a//", normalisePrefix);
  refused("..", normalisePrefix);
  refused("a\u0000", normalisePrefix);
});

Paths("paths - isUnder: a path is under itself, its ancestors and the root", () => {
  assert.ok(isUnder("/a/b/c", "/"));
  assert.ok(isUnder("/a/b/c", "/a"));
  assert.ok(isUnder("/a/b/c", "/a/b"));
  assert.ok(isUnder("/a/b/c", "/a/b/c"));
  assert.ok(isUnder("/a", "/"));
});

Paths("paths - isUnder: a sibling sharing a name prefix is not under it", () => {
  assert.not.ok(isUnder("/ab", "/a"));
  assert.not.ok(isUnder("/a-b/c", "/a"));
  assert.not.ok(isUnder("/a", "/a/b"));
  assert.not.ok(isUnder("/b/a", "/a"));
});

Paths("paths - baseName is the last segment", () => {
  assert.is(baseName("/a"), "a");
  assert.is(baseName("/a/b/c.txt"), "c.txt");
  assert.is(baseName("/dir/\u65e5\u672c"), "\u65e5\u672c");
  assert.is(baseName(normalisePath("x/y")), "y");
});

Paths.run();
