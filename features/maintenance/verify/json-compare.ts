/**
 * Does an indexed JSON value say exactly what a Redis string's JSON text says? Verify's own
 * reading of the text (it does not use the indexing path's parser): a small tokenizer walks
 * the text and the value side by side. Only insignificant whitespace and how a string's
 * characters are escaped may differ; every key, in order and once, every string and every
 * number as spelled (the value's number must print as the text's digits: `1.0`, `1e3` or a
 * 20-digit integer in the text against a rounded double in the value is a difference).
 *
 * Returns undefined when they agree, else where they first differ.
 */
export function jsonDifference(text: string, value: unknown): string | undefined {
  const reader = new Reader(text);
  try {
    const why = reader.compareValue(value, '$');
    if (why) return why;
    reader.skipSpace();
    return reader.atEnd() ? undefined : `text goes on after the value at offset ${reader.at}`;
  } catch (err) {
    if (err instanceof NotJson) return `text is not JSON (${err.message})`;
    throw err;
  }
}

class NotJson extends Error {}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class Reader {
  at = 0;
  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.at >= this.text.length;
  }

  skipSpace(): void {
    while (this.at < this.text.length && ' \t\n\r'.includes(this.text.charAt(this.at))) this.at++;
  }

  compareValue(value: unknown, path: string): string | undefined {
    this.skipSpace();
    const c = this.text[this.at];
    if (c === '{') return this.compareObject(value, path);
    if (c === '[') return this.compareArray(value, path);
    if (c === '"') {
      const s = this.readString();
      return value === s ? undefined : `${path}: the text has the string ${JSON.stringify(s)}`;
    }
    for (const [word, lit] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.text.startsWith(word, this.at)) {
        this.at += word.length;
        return value === lit ? undefined : `${path}: the text has ${word}`;
      }
    }
    NUMBER.lastIndex = this.at;
    const m = NUMBER.exec(this.text);
    if (!m) throw new NotJson(`unexpected character at offset ${this.at}`);
    this.at += m[0].length;
    return typeof value === 'number' && String(value) === m[0] ? undefined : `${path}: the text has the number ${m[0]}`;
  }

  private compareObject(value: unknown, path: string): string | undefined {
    this.at++;
    const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
    const names = isObject ? Object.keys(value) : [];
    let n = 0;
    let why: string | undefined = isObject ? undefined : `${path}: the text has an object`;
    this.skipSpace();
    if (this.text[this.at] === '}') {
      this.at++;
      return why ?? (names.length === 0 ? undefined : `${path}: the value has ${names.length} keys, the text none`);
    }
    for (;;) {
      this.skipSpace();
      if (this.text[this.at] !== '"') throw new NotJson(`expected a key at offset ${this.at}`);
      const name = this.readString();
      this.expect(':');
      const child = `${path}.${name}`;
      if (!why && names[n] !== name) why = `${child}: key ${n + 1} of the value is ${JSON.stringify(names[n] ?? null)}`;
      // Keep reading after a difference: the text must still be JSON for the answer to hold.
      const inner = this.compareValue(why ? undefined : (value as Record<string, unknown>)[name], child);
      why ??= inner;
      n++;
      this.skipSpace();
      const sep = this.text[this.at++];
      if (sep === '}') break;
      if (sep !== ',') throw new NotJson(`expected , or } at offset ${this.at - 1}`);
    }
    return why ?? (n === names.length ? undefined : `${path}: the value has ${names.length} keys, the text ${n}`);
  }

  private compareArray(value: unknown, path: string): string | undefined {
    this.at++;
    const items = Array.isArray(value) ? (value as unknown[]) : undefined;
    let why: string | undefined = items ? undefined : `${path}: the text has an array`;
    let n = 0;
    this.skipSpace();
    if (this.text[this.at] === ']') {
      this.at++;
      if (why !== undefined || items === undefined) return why; // why is set whenever items is not
      return items.length === 0 ? undefined : `${path}: the value has ${items.length} items, the text none`;
    }
    for (;;) {
      const inner = this.compareValue(why ? undefined : items?.[n], `${path}[${n}]`);
      why ??= inner;
      n++;
      this.skipSpace();
      const sep = this.text[this.at++];
      if (sep === ']') break;
      if (sep !== ',') throw new NotJson(`expected , or ] at offset ${this.at - 1}`);
    }
    if (why !== undefined || items === undefined) return why;
    return n === items.length ? undefined : `${path}: the value has ${items.length} items, the text ${n}`;
  }

  private expect(ch: string): void {
    this.skipSpace();
    if (this.text[this.at] !== ch) throw new NotJson(`expected ${ch} at offset ${this.at}`);
    this.at++;
  }

  /** One string token, its escapes resolved by the engine's own JSON string reading. */
  private readString(): string {
    let j = this.at + 1;
    for (;;) {
      const c = this.text[j];
      if (c === undefined) throw new NotJson('unterminated string');
      if (c === '"') break;
      j += c === '\\' ? 2 : 1;
    }
    const token = this.text.slice(this.at, j + 1);
    this.at = j + 1;
    try {
      return JSON.parse(token) as string;
    } catch (err) {
      throw new NotJson((err as Error).message);
    }
  }
}
