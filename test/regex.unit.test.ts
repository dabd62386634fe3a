import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import {
  compileGoRegexp,
  compileRe2,
  compileRe2Test,
  expandReplacement,
  groupNames,
  RegexSyntaxError,
  replaceAllMatches,
} from "../common/regex.js";

// Go's regexp syntax as Loki and Prometheus accept it, checked against what Go's regexp answers for each pattern.
describe("RE2 regexes: Go syntax", () => {
  const cases: [pattern: string, text: string, match: string | null][] = [
    ["[[:alpha:]]+", "12abc3", "abc"],
    ["[[:^alpha:]]+", "ab12c", "12"],
    ["[^[:digit:]x]+", "1ab2", "ab"],
    ["\\pL+", "1éa2", "éa"],
    ["\\p{Greek}+", "aαβb", "αβ"],
    ["\\PL+", "ab12cd", "12"],
    ["\\Qa.b*\\E", "xa.b*y", "a.b*"],
    ["\\Qa.b", "a.b", "a.b"],
    ["(?i)error", "ERROR here", "ERROR"],
    ["a(?i)b", "aB", "aB"],
    ["a(?i:b)c", "aBc", "aBc"],
    ["a(?i:b)c", "aBC", null],
    ["(?U)a+", "aaa", "a"],
    ["(?P<word>\\w+)", "hi", "hi"],
    ["(?<word>\\w+)", "hi", "hi"],
    ["\\Aab", "abab", "ab"],
    ["ab\\z", "abab", "ab"],
    ["x*", "", ""],
    ["[]a]+", "]a]", "]a]"],
    ["\\d+", "a١23", "23"],
    ["^.$", "😀", "😀"],
    ["\\x{1F600}", "a😀", "😀"],
    ["[\\-a]+", "-a-", "-a-"],
  ];
  for (const [pattern, text, match] of cases) {
    it(`${pattern} on ${JSON.stringify(text)}`, () => {
      assert.equal(compileGoRegexp(pattern).exec(text)?.[0] ?? null, match);
    });
  }

  it("`.` matches a newline in queries (as the stores do), not in Go's defaults unless (?s)", () => {
    assert.equal(compileRe2("a.b").test("a\nb"), true);
    assert.equal(compileRe2("(?-s)a.b").test("a\nb"), false);
    assert.equal(compileGoRegexp("a.b").test("a\nb"), false);
    assert.equal(compileGoRegexp("(?s)a.b").test("a\nb"), true);
  });

  it("anchored patterns match the whole value, as Prometheus and Loki label matchers do", () => {
    assert.equal(compileRe2("foo|bar", true).test("foobar"), false);
    assert.equal(compileRe2("foo|bar", true).test("bar"), true);
    assert.equal(compileRe2("fo", true).test("foo"), false);
    assert.equal(compileRe2("fo").test("foo"), true);
    assert.equal(compileRe2("(?i)FOO", true).test("foo"), true);
  });

  it("`$` ends the text and `^` starts it unless (?m)", () => {
    assert.equal(compileGoRegexp("a$").test("a\nb"), false);
    assert.equal(compileGoRegexp("(?m)a$").test("a\nb"), true);
  });

  it("refuses what Go refuses, with Go's reasons", () => {
    const reasons: [string, RegExp][] = [
      ["(a", /missing closing \)/],
      ["[a", /missing closing \]/],
      ["a\\", /trailing backslash at end of expression/],
      ["*a", /missing argument to repetition operator/],
      ["a**", /invalid nested repetition operator/],
      ["a{1001}", /invalid repeat count/],
      ["(?<=a)b", /invalid or unsupported Perl syntax/],
      ["(a)\\1", /invalid escape sequence/],
      ["a\\C", /invalid escape sequence: \\C/],
      ["[[:foo:]]", /invalid character class range/],
    ];
    for (const [pattern, reason] of reasons) {
      for (const anchored of [false, true]) {
        assert.throws(
          () => compileRe2(pattern, anchored),
          (err: unknown) => err instanceof RegexSyntaxError && reason.test(err.message),
          `${pattern} (anchored: ${anchored})`,
        );
      }
    }
    assert.equal(compileRe2("a\\\\C").test("a\\C"), true);
  });

  it("group names in the order they open, and Go's Expand", () => {
    const regex = compileRe2("(?P<b>x)(y)(?P<a>z)?");
    assert.deepEqual(groupNames(regex), ["b", "a"]);
    const match = regex.exec("xy")!;
    assert.equal(expandReplacement("$b-$2-${a}-$$", match), "x-y--$");
  });

  it("replaceAllMatches replaces every match and each empty match once per code point", () => {
    assert.equal(
      replaceAllMatches(compileGoRegexp("a+"), "caaab a", (m) => `<${m[0]}>`),
      "c<aaa>b <a>",
    );
    assert.equal(
      replaceAllMatches(compileGoRegexp("x*"), "😀b", () => "-"),
      "-😀-b-",
    );
  });
});

describe("RE2 regexes: linear time", () => {
  // Each of these takes exponential time on a backtracking engine (JavaScript's RegExp) over 40 or more characters.
  const hostile: [string, string][] = [
    ["(a+)+$", "a".repeat(5000) + "!"],
    ["(a|aa)+$", "a".repeat(5000) + "!"],
    ["(a|a?)+b", "a".repeat(5000)],
    ["(\\w+\\s?)+$", "word ".repeat(2000) + "!"],
    ["^(([a-z])+.)+[A-Z]([a-z])+$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"],
  ];
  for (const [pattern, text] of hostile) {
    it(`${pattern} finishes on ${text.length} characters`, () => {
      assert.equal(compileRe2(pattern).test(text), false);
      assert.equal(compileRe2(pattern, true).test(text), false);
    });
  }
});

describe("RE2 regexes: literal fast paths answer as RE2 does", () => {
  const patterns = [
    "error",
    "error|timeout",
    "status=5\\d\\d",
    "a\\.b",
    "ab?c",
    "ab+c",
    "a{2}b",
    "a\\.?b",
    "\\d+x",
    "\\pLx",
    "a\\x41",
    "ab+?c",
    "a|",
    "^foo$",
    "(?i)error",
    "a\\|b",
    "a\\\\|b",
    "x*?y",
    "[ab]c",
    "é+x",
    "",
  ];
  const texts = [
    "",
    "error",
    "ERROR",
    "timeout x",
    "status=503",
    "status=5x",
    "a.b",
    "axb",
    "ac",
    "abc",
    "abbc",
    "aab",
  ];
  const more = ["ab", "a.b", "1x", "Lx", "aA", "x", "b", "foo", "a|b", "a\\", "xy", "y", "ac", "éx", "ééx", "a"];
  for (const pattern of patterns) {
    for (const anchored of [false, true]) {
      it(`${JSON.stringify(pattern)} anchored: ${anchored}`, () => {
        const test = compileRe2Test(pattern, anchored);
        const regex = compileRe2(pattern, anchored);
        for (const text of [...texts, ...more]) assert.equal(test(text), regex.test(text), JSON.stringify(text));
      });
    }
  }
});
