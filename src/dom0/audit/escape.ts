/**
 * Makes agent-supplied strings safe to print on an operator's terminal:
 * nothing but printable ASCII comes out, so no control character, ANSI
 * escape, bidi override or look-alike letter reaches the screen as itself.
 */

function hex(code: number, width: number): string {
  return code.toString(16).padStart(width, '0');
}

/** A string as a double-quoted literal: `\\`, `\"`, `\xNN` for controls, `\u{…}` for the rest. */
export function quote(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    if (ch === '\\' || ch === '"') out += '\\' + ch;
    else if (code < 0x20 || code === 0x7f) out += '\\x' + hex(code, 2);
    else if (code > 0x7e) out += `\\u{${hex(code, 4)}}`;
    else out += ch;
  }
  return out + '"';
}

/** JSON with every character outside printable ASCII written as a \u escape. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (ch) => '\\u' + hex(ch.charCodeAt(0), 4));
}
