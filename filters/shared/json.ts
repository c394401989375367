// A strict, allocation-light JSON reader for plugin configuration. It never
// traps on malformed input: parse() returns null and leaves a reason in
// `jsonError`. Duplicate object keys are an error, since a config that says
// two things is ambiguous.

export const enum Kind { Null, Bool, Number, String, Array, Object }

export class JsonValue {
  constructor(readonly kind: Kind) {}
  num: f64 = 0;
  bool: bool = false;
  str: string = "";
  items: JsonValue[] = [];
  keys: string[] = [];

  /** Member of an object, or null. */
  get(key: string): JsonValue | null {
    for (let i = 0; i < this.keys.length; i++) {
      if (unchecked(this.keys[i]) == key) return unchecked(this.items[i]);
    }
    return null;
  }
}

export let jsonError = "";

class Parser {
  pos: i32 = 0;
  constructor(readonly s: string) {}

  fail(msg: string): JsonValue | null {
    if (jsonError.length == 0) jsonError = msg + " at offset " + this.pos.toString();
    return null;
  }

  peek(): i32 { return this.pos < this.s.length ? this.s.charCodeAt(this.pos) : -1; }

  skipWs(): void {
    let c = this.peek();
    while (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) { this.pos++; c = this.peek(); }
  }

  literal(word: string): bool {
    if (this.s.substr(this.pos, word.length) != word) return false;
    this.pos += word.length;
    return true;
  }

  value(depth: i32): JsonValue | null {
    if (depth > 32) return this.fail("nesting too deep");
    this.skipWs();
    const c = this.peek();
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      const s = this.string();
      if (s === null) return null;
      const v = new JsonValue(Kind.String);
      v.str = s;
      return v;
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.literal("true")) { const v = new JsonValue(Kind.Bool); v.bool = true; return v; }
    if (this.literal("false")) return new JsonValue(Kind.Bool);
    if (this.literal("null")) return new JsonValue(Kind.Null);
    return this.fail("unexpected character");
  }

  number(): JsonValue | null {
    const start = this.pos;
    if (this.peek() == 0x2d) this.pos++;
    let digits = 0;
    while (this.peek() >= 0x30 && this.peek() <= 0x39) { this.pos++; digits++; }
    if (digits == 0) return this.fail("bad number");
    if (this.peek() == 0x2e) {
      this.pos++;
      digits = 0;
      while (this.peek() >= 0x30 && this.peek() <= 0x39) { this.pos++; digits++; }
      if (digits == 0) return this.fail("bad number");
    }
    if (this.peek() == 0x65 || this.peek() == 0x45) {
      this.pos++;
      if (this.peek() == 0x2b || this.peek() == 0x2d) this.pos++;
      digits = 0;
      while (this.peek() >= 0x30 && this.peek() <= 0x39) { this.pos++; digits++; }
      if (digits == 0) return this.fail("bad number");
    }
    const v = new JsonValue(Kind.Number);
    v.num = parseFloat(this.s.substring(start, this.pos));
    return v;
  }

  string(): string | null {
    this.pos++; // opening quote
    let out = "";
    let runStart = this.pos;
    while (true) {
      const c = this.peek();
      if (c < 0) { this.fail("unterminated string"); return null; }
      if (c == 0x22) break;
      if (c < 0x20) { this.fail("control character in string"); return null; }
      if (c == 0x5c) {
        out += this.s.substring(runStart, this.pos);
        this.pos++;
        const e = this.peek();
        if (e == 0x22 || e == 0x5c || e == 0x2f) out += String.fromCharCode(e);
        else if (e == 0x6e) out += "\n";
        else if (e == 0x74) out += "\t";
        else if (e == 0x72) out += "\r";
        else if (e == 0x62) out += "\b";
        else if (e == 0x66) out += "\f";
        else if (e == 0x75) {
          const hex = this.s.substr(this.pos + 1, 4);
          let code = 0;
          for (let i = 0; i < 4; i++) {
            const h = i < hex.length ? hex.charCodeAt(i) : -1;
            let d = -1;
            if (h >= 0x30 && h <= 0x39) d = h - 0x30;
            else if (h >= 0x61 && h <= 0x66) d = h - 0x57;
            else if (h >= 0x41 && h <= 0x46) d = h - 0x37;
            if (d < 0) { this.fail("bad \\u escape"); return null; }
            code = code * 16 + d;
          }
          out += String.fromCharCode(code);
          this.pos += 4;
        } else { this.fail("bad escape"); return null; }
        this.pos++;
        runStart = this.pos;
        continue;
      }
      this.pos++;
    }
    out += this.s.substring(runStart, this.pos);
    this.pos++; // closing quote
    return out;
  }

  array(depth: i32): JsonValue | null {
    this.pos++;
    const v = new JsonValue(Kind.Array);
    this.skipWs();
    if (this.peek() == 0x5d) { this.pos++; return v; }
    while (true) {
      const item = this.value(depth + 1);
      if (item === null) return null;
      v.items.push(item);
      this.skipWs();
      const c = this.peek();
      this.pos++;
      if (c == 0x5d) return v;
      if (c != 0x2c) return this.fail("expected , or ]");
    }
  }

  object(depth: i32): JsonValue | null {
    this.pos++;
    const v = new JsonValue(Kind.Object);
    this.skipWs();
    if (this.peek() == 0x7d) { this.pos++; return v; }
    while (true) {
      this.skipWs();
      if (this.peek() != 0x22) return this.fail("expected a key");
      const key = this.string();
      if (key === null) return null;
      if (v.keys.includes(key)) return this.fail("duplicate key \"" + key + "\"");
      this.skipWs();
      if (this.peek() != 0x3a) return this.fail("expected :");
      this.pos++;
      const item = this.value(depth + 1);
      if (item === null) return null;
      v.keys.push(key);
      v.items.push(item);
      this.skipWs();
      const c = this.peek();
      this.pos++;
      if (c == 0x7d) return v;
      if (c != 0x2c) return this.fail("expected , or }");
    }
  }
}

export function parseJson(text: string): JsonValue | null {
  jsonError = "";
  const p = new Parser(text);
  const v = p.value(0);
  if (v === null) return null;
  p.skipWs();
  if (p.pos != text.length) return p.fail("trailing characters");
  return v;
}
