// One IRC line <-> one message object (IRCv3 message tags included).
// Pure functions only: no DOM, no network.

const TAG_ESCAPES = { ":": ";", s: " ", "\\": "\\", r: "\r", n: "\n" };

function unescapeTag(value) {
  return value.replace(/\\(.?)/g, (_, c) => (c in TAG_ESCAPES ? TAG_ESCAPES[c] : c));
}

function escapeTag(value) {
  return String(value)
    .replace(/\\/g, "\\\\")
    .replace(/;/g, "\\:")
    .replace(/ /g, "\\s")
    .replace(/\r/g, "\\r")
    .replace(/\n/g, "\\n");
}

/** Parse one line (without CR/LF) into {tags, source, command, params}. */
export function parse(line) {
  let rest = line;
  const tags = {};
  if (rest.startsWith("@")) {
    const end = rest.indexOf(" ");
    const raw = end < 0 ? rest.slice(1) : rest.slice(1, end);
    for (const item of raw.split(";")) {
      if (!item) continue;
      const eq = item.indexOf("=");
      if (eq < 0) tags[item] = "";
      else tags[item.slice(0, eq)] = unescapeTag(item.slice(eq + 1));
    }
    rest = end < 0 ? "" : rest.slice(end + 1).trimStart();
  }
  let source = null;
  if (rest.startsWith(":")) {
    const end = rest.indexOf(" ");
    source = end < 0 ? rest.slice(1) : rest.slice(1, end);
    rest = end < 0 ? "" : rest.slice(end + 1).trimStart();
  }
  const params = [];
  let command = "";
  while (rest.length) {
    if (rest.startsWith(":") && command) {
      params.push(rest.slice(1));
      break;
    }
    const end = rest.indexOf(" ");
    const word = end < 0 ? rest : rest.slice(0, end);
    if (!command) command = word.toUpperCase();
    else params.push(word);
    rest = end < 0 ? "" : rest.slice(end + 1).replace(/^ +/, "");
  }
  return { tags, source, command, params };
}

/** Serialize a message; the last parameter may contain spaces. */
export function serialize(command, params = [], tags = {}) {
  const parts = [];
  const tagText = Object.entries(tags)
    .map(([k, v]) => (v === "" || v === true ? k : `${k}=${escapeTag(v)}`))
    .join(";");
  if (tagText) parts.push(`@${tagText}`);
  parts.push(command);
  params.forEach((param, index) => {
    const text = String(param).replace(/[\r\n\0]/g, " ");
    const last = index === params.length - 1;
    if (last && (text === "" || text.includes(" ") || text.startsWith(":"))) {
      parts.push(`:${text}`);
    } else {
      parts.push(text);
    }
  });
  return parts.join(" ");
}

/** Cut *text* into pieces of at most *maxBytes* UTF-8 bytes, between characters. */
export function splitText(text, maxBytes) {
  const encoder = new TextEncoder();
  const pieces = [];
  let piece = "";
  let size = 0;
  for (const char of text) {
    const bytes = encoder.encode(char).length;
    if (size + bytes > maxBytes && piece) {
      pieces.push(piece);
      piece = "";
      size = 0;
    }
    piece += char;
    size += bytes;
  }
  if (piece) pieces.push(piece);
  return pieces;
}

/** The nick of a `nick!user@host` source. */
export function nickOf(source) {
  if (!source) return "";
  const bang = source.indexOf("!");
  return bang < 0 ? source : source.slice(0, bang);
}

/** A case folding function for the server's CASEMAPPING. */
export function casefolder(mapping) {
  if (mapping === "ascii") return (s) => s.toLowerCase();
  return (s) =>
    s
      .toLowerCase()
      .replace(/\[/g, "{")
      .replace(/\]/g, "}")
      .replace(/\\/g, "|")
      .replace(/~/g, "^");
}

/** Remove mIRC formatting codes (bold, colour, ...) from text. */
export function stripFormatting(text) {
  return text.replace(/\x03(\d{1,2}(,\d{1,2})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g, "");
}

/** Split a server-time tag into epoch milliseconds (now when absent). */
export function timeOf(tags) {
  const parsed = tags && tags.time ? Date.parse(tags.time) : NaN;
  return Number.isNaN(parsed) ? Date.now() : parsed;
}

/** An IRCv3 timestamp selector value for *ms*. */
export function timestamp(ms) {
  return new Date(ms).toISOString();
}
