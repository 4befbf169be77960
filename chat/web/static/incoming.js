// What the server sends: messages, joins, parts, modes, numerics, and
// CHATHISTORY batches, turned into changes of the conversations.

import { nickOf, timeOf, timestamp } from "./irc.js";
import { splitName, applyModes } from "./state.js";
import * as storage from "./storage.js";
import { $, activeBuffer, app, closeBuffer, findBuffer, fold, getBuffer, isMention, keyOf, note, rememberChannels } from "./model.js";
import { renderHistoryStatus, renderTyping, scheduleRender, switchTo } from "./view.js";

const HISTORY_LATEST = 50;
const HISTORY_PAGE = 50;
const HISTORY_GAP = 200;
const TYPING_SHOW_MS = 6000;
/** Private conversations reopened on login: this many, of these last days. */
const CONVERSATIONS = 20;
const CONVERSATIONS_DAYS = 30;

/** Where a PRIVMSG/NOTICE/TAGMSG belongs, or null for the server buffer. */
function conversationOf(msg) {
  const conn = app.conn;
  let target = msg.params[0] || "";
  const statusmsg = conn.isupport.get("STATUSMSG") || "";
  while (target && statusmsg.includes(target[0]) && conn.isChannel(target.slice(1))) target = target.slice(1);
  if (conn.isChannel(target)) return { name: target, kind: "channel" };
  const sender = nickOf(msg.source);
  if (!msg.source || !msg.source.includes("!")) return null;
  return { name: conn.isMe(sender) ? target : sender, kind: "query" };
}

function messageEntry(msg) {
  let text = msg.params[1] || "";
  let kind = msg.command === "NOTICE" ? "notice" : "privmsg";
  if (text.startsWith("\x01")) {
    const inner = text.replace(/^\x01|\x01$/g, "");
    if (!inner.startsWith("ACTION")) return null;
    kind = "action";
    text = inner.slice(7);
  }
  const nick = nickOf(msg.source);
  const self = app.conn.isMe(nick);
  return {
    id: msg.tags.msgid,
    time: timeOf(msg.tags),
    nick,
    kind,
    text,
    self,
    mention: !self && isMention(text),
    replyTo: msg.tags["+draft/reply"] || null,
    fromServer: true,
  };
}

function onPrivmsg(msg, live) {
  const where = conversationOf(msg);
  const entry = messageEntry(msg);
  if (!entry) return;
  if (!where) {
    getBuffer("server", "server").add(entry);
    scheduleRender();
    return;
  }
  if (where.kind === "query" && msg.command === "NOTICE" && !findBuffer(where.name)) {
    activeBuffer().add(entry);
    scheduleRender();
    return;
  }
  const buffer = getBuffer(where.name, where.kind);
  if (!buffer.add(entry)) return;
  buffer.typing.delete(entry.nick);
  if (live && !entry.self) {
    const seen = keyOf(buffer) === app.active && !document.hidden;
    if (!seen) {
      buffer.unread++;
      if (entry.mention || buffer.kind === "query") buffer.mention = true;
    }
    if (document.hidden && (entry.mention || buffer.kind === "query")) notify(buffer, entry);
    // The list is redrawn whole, so screen readers hear new messages here.
    if (keyOf(buffer) === app.active) $("announce").textContent = `${entry.nick}: ${entry.text}`;
  }
  scheduleRender();
}

function onTagmsg(msg, live) {
  const where = conversationOf(msg);
  if (!where) return;
  const nick = nickOf(msg.source);
  const buffer = findBuffer(where.name) || (where.kind === "query" ? getBuffer(where.name, "query") : null);
  if (!buffer) return;
  const react = msg.tags["+draft/react"] || msg.tags["+react"];
  const reply = msg.tags["+draft/reply"];
  if (react && reply) {
    buffer.react(reply, react, nick);
    scheduleRender();
  }
  const typing = msg.tags["+typing"];
  if (live && typing && !app.conn.isMe(nick)) {
    if (typing === "active") buffer.typing.set(nick, Date.now() + TYPING_SHOW_MS);
    else buffer.typing.delete(nick);
    renderTyping();
  }
}

function memberJoined(buffer, nick) {
  buffer.members.set(fold(nick), { nick, prefix: "" });
}

function onJoin(msg) {
  const nick = nickOf(msg.source);
  const channel = msg.params[0];
  if (app.conn.isMe(nick)) {
    const buffer = getBuffer(channel, "channel");
    buffer.name = channel;
    buffer.joined = true;
    buffer.members.clear();
    app.wanted.set(fold(channel), channel);
    rememberChannels();
    if (buffer.wantFocus) {
      buffer.wantFocus = false;
      switchTo(buffer);
    }
    requestRecent(buffer);
  } else {
    const buffer = findBuffer(channel);
    if (!buffer) return;
    memberJoined(buffer, nick);
    note(buffer, `${nick} joined`);
  }
  scheduleRender();
}

function removeMember(buffer, nick, text) {
  if (buffer.members.delete(fold(nick))) note(buffer, text);
  buffer.typing.delete(nick);
}

function onPart(msg) {
  const nick = nickOf(msg.source);
  const buffer = findBuffer(msg.params[0]);
  if (!buffer) return;
  if (app.conn.isMe(nick)) {
    buffer.joined = false;
    app.wanted.delete(fold(buffer.name));
    rememberChannels();
    closeBuffer(buffer);
    return;
  }
  const reason = msg.params[1] ? ` (${msg.params[1]})` : "";
  removeMember(buffer, nick, `${nick} left${reason}`);
  scheduleRender();
}

function onKick(msg) {
  const [channel, victim, reason = ""] = msg.params;
  const buffer = findBuffer(channel);
  if (!buffer) return;
  const by = nickOf(msg.source);
  if (app.conn.isMe(victim)) {
    buffer.joined = false;
    buffer.members.clear();
    app.wanted.delete(fold(buffer.name));
    rememberChannels();
    note(buffer, `You were kicked by ${by}: ${reason}`, "error");
  } else {
    removeMember(buffer, victim, `${victim} was kicked by ${by}: ${reason}`);
  }
  scheduleRender();
}

function onQuit(msg) {
  const nick = nickOf(msg.source);
  const reason = msg.params[0] ? ` (${msg.params[0]})` : "";
  for (const buffer of app.buffers.values()) {
    if (buffer.kind === "channel") removeMember(buffer, nick, `${nick} quit${reason}`);
  }
  scheduleRender();
}

function onNick(msg) {
  const old = nickOf(msg.source);
  const nick = msg.params[0];
  for (const buffer of app.buffers.values()) {
    const member = buffer.members.get(fold(old));
    if (member) {
      buffer.members.delete(fold(old));
      member.nick = nick;
      buffer.members.set(fold(nick), member);
      note(buffer, `${old} is now known as ${nick}`);
    }
  }
  const query = findBuffer(old);
  if (query && query.kind === "query") {
    app.buffers.delete(keyOf(query));
    query.name = nick;
    app.buffers.set(keyOf(query), query);
    if (app.active === fold(old)) app.active = keyOf(query);
  }
  if (app.conn.isMe(nick)) {
    app.prefs.nick = nick;
    storage.save(app.prefs);
  }
  scheduleRender();
}

function onMode(msg) {
  const buffer = findBuffer(msg.params[0]);
  if (!buffer || buffer.kind !== "channel") return;
  applyModes(buffer, msg.params.slice(1), app.conn.prefixes(), app.conn.isupport.get("CHANMODES") || "beI,k,l,imnpst", fold);
  note(buffer, `${nickOf(msg.source)} sets mode ${msg.params.slice(1).join(" ")}`);
  scheduleRender();
}

function onNumeric(msg) {
  const p = msg.params;
  const last = p[p.length - 1] || "";
  switch (msg.command) {
    case "353": {
      const buffer = findBuffer(p[2]);
      if (!buffer) return;
      buffer.pendingNames = buffer.pendingNames || new Map();
      const symbols = app.conn.prefixes().symbols;
      for (const item of last.split(" ").filter(Boolean)) {
        const member = splitName(item, symbols);
        buffer.pendingNames.set(fold(member.nick), member);
      }
      return;
    }
    case "366": {
      const buffer = findBuffer(p[1]);
      if (buffer && buffer.pendingNames) {
        buffer.members = buffer.pendingNames;
        buffer.pendingNames = null;
        scheduleRender();
      }
      return;
    }
    case "332": {
      const buffer = findBuffer(p[1]);
      if (buffer) buffer.topic = last;
      scheduleRender();
      return;
    }
    case "331":
    case "333":
    case "329":
    case "324":
      return;
    case "301": {
      const buffer = findBuffer(p[1]) || activeBuffer();
      note(buffer, `${p[1]} is away: ${last}`);
      return;
    }
    case "305":
    case "306":
      note(activeBuffer(), last);
      return;
    default:
      break;
  }
  const code = Number(msg.command); // 422 is only "no MOTD"
  if (code >= 400 && code < 600 && code !== 422) {
    note(activeBuffer(), p.slice(1).join(" "), "error");
  } else {
    note(getBuffer("server", "server"), p.slice(1).join(" "));
  }
}

export function onMessage(msg, live = true) {
  switch (msg.command) {
    case "PRIVMSG":
    case "NOTICE":
      onPrivmsg(msg, live);
      return;
    case "TAGMSG":
      onTagmsg(msg, live);
      return;
    case "JOIN":
      onJoin(msg);
      return;
    case "PART":
      onPart(msg);
      return;
    case "KICK":
      onKick(msg);
      return;
    case "QUIT":
      onQuit(msg);
      return;
    case "NICK":
      onNick(msg);
      return;
    case "MODE":
      onMode(msg);
      return;
    case "TOPIC": {
      const buffer = findBuffer(msg.params[0]);
      if (!buffer) return;
      buffer.topic = msg.params[1] || "";
      note(buffer, `${nickOf(msg.source)} set the topic: ${buffer.topic}`);
      scheduleRender();
      return;
    }
    case "FAIL":
      if (msg.params[0] === "CHATHISTORY") {
        for (const buffer of app.buffers.values()) buffer.loading = null;
        renderHistoryStatus();
      }
      note(activeBuffer(), msg.params[msg.params.length - 1], "error");
      return;
    case "WARN":
      note(activeBuffer(), msg.params[msg.params.length - 1]);
      return;
    case "ERROR":
    case "CAP":
    case "PONG":
    case "AWAY":
    case "ACCOUNT":
    case "BATCH":
      return;
    default:
      if (/^\d{3}$/.test(msg.command)) onNumeric(msg);
  }
}

function hasHistory() {
  return app.conn && app.conn.caps.has("draft/chathistory");
}

/** After a join or reconnect: the latest messages, or the gap since the newest. */
export function requestRecent(buffer) {
  if (!hasHistory() || buffer.loading) return;
  const newest = buffer.newestTime();
  buffer.loading = "latest";
  if (newest === null) {
    app.conn.send("CHATHISTORY", "LATEST", buffer.name, "*", String(HISTORY_LATEST));
  } else {
    // A millisecond early: messages of the same millisecond are not lost
    // (those already here are dropped by their msgid).
    app.conn.send("CHATHISTORY", "LATEST", buffer.name, `timestamp=${timestamp(newest - 1)}`, String(HISTORY_GAP));
  }
  renderHistoryStatus();
}

export function requestOlder(buffer) {
  if (!hasHistory() || buffer.loading || buffer.historyComplete || buffer.kind === "server") return;
  const oldest = buffer.oldest();
  if (!oldest) return;
  buffer.loading = "before";
  const selector = oldest.id.startsWith("local-") ? `timestamp=${timestamp(oldest.time)}` : `msgid=${oldest.id}`;
  app.conn.send("CHATHISTORY", "BEFORE", buffer.name, selector, String(HISTORY_PAGE));
  renderHistoryStatus();
}

/** Ask which private conversations had messages lately (CHATHISTORY TARGETS). */
export function requestConversations() {
  if (!hasHistory()) return;
  const now = Date.now();
  const from = `timestamp=${timestamp(now - CONVERSATIONS_DAYS * 86400000)}`;
  app.conn.send("CHATHISTORY", "TARGETS", from, `timestamp=${timestamp(now + 60000)}`, String(CONVERSATIONS));
}

/** Open the private conversations a TARGETS batch names, with their history. */
function onTargets(batch) {
  for (const msg of batch.messages) {
    const [sub, target] = msg.params;
    if (msg.command !== "CHATHISTORY" || sub !== "TARGETS" || !target || app.conn.isChannel(target)) continue;
    if (app.conn.isMe(target)) continue;
    requestRecent(getBuffer(target, "query"));
  }
  scheduleRender();
}

export function onBatch(batch) {
  if (batch.type === "draft/chathistory-targets") {
    onTargets(batch);
    return;
  }
  if (batch.type !== "chathistory") {
    for (const msg of batch.messages) onMessage(msg);
    return;
  }
  const buffer = findBuffer(batch.params[0]) || getBuffer(batch.params[0], app.conn.isChannel(batch.params[0]) ? "channel" : "query");
  const kind = buffer.loading;
  buffer.loading = null;
  const entries = batch.messages
    .filter((msg) => msg.command === "PRIVMSG" || msg.command === "NOTICE")
    .map(messageEntry)
    .filter(Boolean);
  let added = 0;
  if (kind === "before") added = buffer.prepend(entries);
  else for (const entry of entries) if (buffer.add(entry)) added++;
  for (const msg of batch.messages) {
    if (msg.command === "TAGMSG") {
      const react = msg.tags["+draft/react"] || msg.tags["+react"];
      if (react && msg.tags["+draft/reply"]) buffer.react(msg.tags["+draft/reply"], react, nickOf(msg.source));
    }
  }
  if (kind === "before" && added === 0) buffer.historyComplete = true;
  if (kind === "latest" && buffer.newestTime() === null) buffer.historyComplete = true;
  app.prependRender = kind === "before";
  scheduleRender();
  requestAnimationFrame(maybeLoadOlder);
}

/** Load older messages when the list is scrolled to the top or not full. */
export function maybeLoadOlder() {
  const list = $("messages");
  const buffer = activeBuffer();
  if (list.scrollTop < 40 || list.scrollHeight <= list.clientHeight) requestOlder(buffer);
}

export function notify(buffer, entry) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const title = buffer.kind === "query" ? entry.nick : `${entry.nick} in ${buffer.name}`;
  const notification = new Notification(title, { body: entry.text.slice(0, 200), tag: keyOf(buffer) });
  notification.addEventListener("click", () => {
    window.focus();
    switchTo(buffer);
  });
}
