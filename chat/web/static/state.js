// Conversations (buffers) and what is in them: messages kept in time order
// without duplicates, members with their prefixes, topic, unread counts,
// typing nicks. No DOM here.

/** How many messages a buffer keeps. */
export const KEEP = 2000;

/** Messages closer than this from one sender share one header. */
export const GROUP_MS = 5 * 60 * 1000;

let localIds = 0;

export class Buffer {
  constructor(name, kind) {
    this.name = name;
    this.kind = kind; // "server", "channel" or "query"
    this.messages = [];
    this.ids = new Map();
    this.members = new Map(); // folded nick -> {nick, prefix}
    this.pendingNames = null;
    this.topic = "";
    this.unread = 0;
    this.mention = false;
    this.joined = false;
    this.typing = new Map(); // nick -> expiry (ms)
    this.historyComplete = false;
    this.loading = null; // "latest" or "before" while a request is out
    this.version = 0; // changes whenever the messages or reactions do
  }

  remember(entry) {
    entry.id = entry.id || `local-${++localIds}`;
    entry.reactions = entry.reactions || new Map();
    this.ids.set(entry.id, entry);
  }

  /** Add *entry* in time order; false when its msgid is already here. */
  add(entry) {
    if (entry.id && this.ids.has(entry.id)) return false;
    this.remember(entry);
    let index = this.messages.length;
    while (index > 0 && this.messages[index - 1].time > entry.time) index--;
    this.messages.splice(index, 0, entry);
    this.version++;
    if (this.messages.length > KEEP) {
      const dropped = this.messages.shift();
      this.ids.delete(dropped.id);
      this.historyComplete = false;
    }
    return true;
  }

  /** Put *entries* (older than everything here, in order) first; how many were new. */
  prepend(entries) {
    const fresh = entries.filter((e) => !(e.id && this.ids.has(e.id)));
    for (const entry of fresh) this.remember(entry);
    this.messages.unshift(...fresh);
    this.version++;
    return fresh.length;
  }

  /** The oldest message from the server, if any. */
  oldest() {
    return this.messages.find((m) => m.fromServer) || null;
  }

  /** The time of the newest message from the server (not local notes). */
  newestTime() {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      if (this.messages[i].fromServer) return this.messages[i].time;
    }
    return null;
  }

  /** Record a reaction *emoji* by *nick* on message *msgid*. */
  react(msgid, emoji, nick) {
    const target = this.ids.get(msgid);
    if (!target) return false;
    if (!target.reactions.has(emoji)) target.reactions.set(emoji, new Set());
    target.reactions.get(emoji).add(nick);
    this.version++;
    return true;
  }

  /** Members sorted by rank (prefix order), then by nick. */
  sortedMembers(symbols) {
    const rank = (m) => {
      const index = m.prefix ? symbols.indexOf(m.prefix[0]) : -1;
      return index < 0 ? symbols.length : index;
    };
    return [...this.members.values()].sort(
      (a, b) => rank(a) - rank(b) || a.nick.localeCompare(b.nick, undefined, { sensitivity: "base" }),
    );
  }
}

/** Split a NAMES item ("@+nick" or "@nick!user@host") into prefix and nick. */
export function splitName(item, symbols) {
  let i = 0;
  while (i < item.length && symbols.includes(item[i])) i++;
  const rest = item.slice(i);
  const bang = rest.indexOf("!");
  return { prefix: item.slice(0, i), nick: bang < 0 ? rest : rest.slice(0, bang) };
}

/** Apply a channel MODE's prefix changes (+o nick, -v nick ...) to *buffer*. */
export function applyModes(buffer, params, prefixes, chanmodes, fold) {
  const [listModes = "", alwaysArg = "", setArg = ""] = chanmodes.split(",");
  const modeString = params[0] || "";
  let argIndex = 1;
  let adding = true;
  for (const c of modeString) {
    if (c === "+" || c === "-") {
      adding = c === "+";
      continue;
    }
    const prefixIndex = prefixes.modes.indexOf(c);
    if (prefixIndex >= 0) {
      const nick = params[argIndex++];
      const member = nick && buffer.members.get(fold(nick));
      if (!member) continue;
      const symbol = prefixes.symbols[prefixIndex];
      let prefix = member.prefix.replace(symbol, "");
      if (adding) prefix += symbol;
      member.prefix = [...prefix].sort((a, b) => prefixes.symbols.indexOf(a) - prefixes.symbols.indexOf(b)).join("");
    } else if (listModes.includes(c) || alwaysArg.includes(c) || (adding && setArg.includes(c))) {
      argIndex++;
    }
  }
}
