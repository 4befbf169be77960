// The web client: wires the login form, the connection, the buffers and
// the page together. All user-supplied text reaches the DOM through
// textContent or text nodes (see format.js), never as HTML.

import { Connection } from "./connection.js";
import { nickOf, timeOf, timestamp } from "./irc.js";
import { Buffer, GROUP_MS, splitName, applyModes } from "./state.js";
import { appendText, el, mentionPattern, nickClass, clock } from "./format.js";
import { parseInput } from "./commands.js";
import * as storage from "./storage.js";

const SERVER = "*server*";
const HISTORY_LATEST = 50;
const HISTORY_PAGE = 50;
const HISTORY_GAP = 200;
const TYPING_SEND_MS = 3000;
const TYPING_SHOW_MS = 6000;
const REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "👀"];

const $ = (id) => document.getElementById(id);

const app = {
  conn: null,
  buffers: new Map(),
  active: SERVER,
  inputHistory: [],
  historyIndex: -1,
  draft: "",
  replyTo: null,
  typingSent: 0,
  typingTarget: null,
  renderQueued: false,
  prependRender: false,
  renderedSignature: "",
  wanted: new Set(), // channels to be in (folded name -> name) kept in storage
  prefs: storage.load(),
};

/** The WebSocket address: /socket on the page's own origin (see chat/web). */
function websocketUrl(loc = location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/socket`;
}

// ---- buffers ---------------------------------------------------------

function fold(name) {
  return app.conn ? app.conn.casefold(name) : name.toLowerCase();
}

function getBuffer(name, kind) {
  const key = kind === "server" ? SERVER : fold(name);
  let buffer = app.buffers.get(key);
  if (!buffer) {
    buffer = new Buffer(name, kind);
    app.buffers.set(key, buffer);
    scheduleRender();
  }
  return buffer;
}

function findBuffer(name) {
  return app.buffers.get(fold(name)) || null;
}

function keyOf(buffer) {
  return buffer.kind === "server" ? SERVER : fold(buffer.name);
}

function activeBuffer() {
  return app.buffers.get(app.active) || getBuffer("server", "server");
}

function switchTo(buffer) {
  stopTyping();
  app.active = keyOf(buffer);
  buffer.unread = 0;
  buffer.mention = false;
  cancelReply();
  document.body.classList.remove("show-sidebar", "show-members");
  scheduleRender();
  requestAnimationFrame(() => {
    const list = $("messages");
    list.scrollTop = list.scrollHeight;
    maybeLoadOlder();
  });
}

function closeBuffer(buffer) {
  app.buffers.delete(keyOf(buffer));
  if (app.active === keyOf(buffer)) app.active = SERVER;
  scheduleRender();
}

function rememberChannels() {
  app.prefs.channels = [...app.wanted.values()];
  storage.save(app.prefs);
}

// ---- incoming ----------------------------------------------------------

function note(buffer, text, kind = "event") {
  buffer.add({ time: Date.now(), kind, text, nick: "" });
  if (keyOf(buffer) === app.active) scheduleRender();
}

function isMention(text) {
  return app.conn && mentionPattern(app.conn.nick).test(text);
}

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
    app.wanted.add(channel);
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
    app.wanted.delete(buffer.name);
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
    app.wanted.delete(buffer.name);
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
  const code = Number(msg.command);
  if (code >= 400 && code < 600) {
    note(activeBuffer(), p.slice(1).join(" "), "error");
  } else {
    note(getBuffer("server", "server"), p.slice(1).join(" "));
  }
}

function onMessage(msg, live = true) {
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

// ---- history -------------------------------------------------------------

function hasHistory() {
  return app.conn && app.conn.caps.has("draft/chathistory");
}

/** After a join or reconnect: the latest messages, or the gap since the newest. */
function requestRecent(buffer) {
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

function requestOlder(buffer) {
  if (!hasHistory() || buffer.loading || buffer.historyComplete || buffer.kind === "server") return;
  const oldest = buffer.oldest();
  if (!oldest) return;
  buffer.loading = "before";
  const selector = oldest.id.startsWith("local-") ? `timestamp=${timestamp(oldest.time)}` : `msgid=${oldest.id}`;
  app.conn.send("CHATHISTORY", "BEFORE", buffer.name, selector, String(HISTORY_PAGE));
  renderHistoryStatus();
}

function onBatch(batch) {
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
function maybeLoadOlder() {
  const list = $("messages");
  const buffer = activeBuffer();
  if (list.scrollTop < 40 || list.scrollHeight <= list.clientHeight) requestOlder(buffer);
}

// ---- outgoing ------------------------------------------------------------

function sendText(buffer, text, action = false) {
  if (buffer.kind === "server") {
    note(buffer, "This is the server buffer: join a channel (/join #name) or /msg a nick.", "error");
    return;
  }
  const tags = {};
  if (app.replyTo) tags["+draft/reply"] = app.replyTo;
  const body = action ? `\x01ACTION ${text}\x01` : text;
  const limit = 400;
  const chunks = [];
  for (let rest = body; rest.length; rest = rest.slice(limit)) chunks.push(rest.slice(0, limit));
  for (const chunk of chunks) app.conn.sendTagged(tags, "PRIVMSG", buffer.name, chunk);
  if (!app.conn.caps.has("echo-message")) {
    buffer.add({ time: Date.now(), nick: app.conn.nick, kind: action ? "action" : "privmsg", text, self: true, replyTo: app.replyTo });
    scheduleRender();
  }
  cancelReply();
}

function openQuery(nick, focus = true) {
  const buffer = getBuffer(nick, "query");
  if (focus) switchTo(buffer);
  requestRecent(buffer);
  return buffer;
}

function joinChannel(name, key) {
  const existing = findBuffer(name);
  if (existing && existing.joined) {
    switchTo(existing);
    return;
  }
  const buffer = getBuffer(name, "channel");
  buffer.wantFocus = true;
  if (key) app.conn.send("JOIN", name, key);
  else app.conn.send("JOIN", name);
}

function runInput(text) {
  const buffer = activeBuffer();
  const command = parseInput(text, buffer.kind === "server" ? null : buffer.name);
  const conn = app.conn;
  switch (command.type) {
    case "say":
      sendText(buffer, command.text);
      break;
    case "me":
      sendText(buffer, command.text, true);
      break;
    case "join":
      for (const channel of command.channels) joinChannel(channel, command.key);
      break;
    case "part":
      if (!command.channel) {
        if (buffer.kind === "query") closeBuffer(buffer);
        else note(buffer, "Part which channel?", "error");
      } else if (conn.isChannel(command.channel)) {
        conn.send("PART", command.channel, ...(command.reason ? [command.reason] : []));
      } else {
        const query = findBuffer(command.channel);
        if (query) closeBuffer(query);
      }
      break;
    case "msg": {
      if (conn.isChannel(command.target)) {
        const target = findBuffer(command.target) || { name: command.target, kind: "channel" };
        conn.sendTagged({}, "PRIVMSG", target.name, command.text);
      } else {
        const query = openQuery(command.target);
        if (command.text) sendText(query, command.text);
      }
      break;
    }
    case "query":
      openQuery(command.target);
      break;
    case "nick":
      conn.send("NICK", command.nick);
      break;
    case "topic":
      if (command.text === null) conn.send("TOPIC", command.channel);
      else conn.send("TOPIC", command.channel, command.text);
      break;
    case "away":
      if (command.text) conn.send("AWAY", command.text);
      else conn.send("AWAY");
      break;
    case "quote":
      conn.sendRaw(command.line);
      break;
    case "close":
      if (buffer.kind === "channel" && buffer.joined) conn.send("PART", buffer.name);
      else if (buffer.kind !== "server") closeBuffer(buffer);
      break;
    case "help":
      note(buffer, "Commands: /join #chan, /part [#chan] [reason], /msg nick text, /query nick, /me action, /nick new, /topic [text], /away [reason], /close, /quote RAW LINE. Keys: Up/Down for input history, Alt+Up/Down to change conversation, Esc to cancel a reply.");
      break;
    case "error":
      note(buffer, command.text, "error");
      break;
    default:
      break;
  }
}

// ---- typing -------------------------------------------------------------

function canTag() {
  return app.conn && app.conn.caps.has("message-tags");
}

function onInputTyping() {
  const buffer = activeBuffer();
  const text = $("input").value;
  if (!canTag() || buffer.kind === "server" || (buffer.kind === "channel" && !buffer.joined)) return;
  if (!text || text.startsWith("/")) {
    stopTyping();
    return;
  }
  const now = Date.now();
  if (now - app.typingSent > TYPING_SEND_MS || app.typingTarget !== buffer.name) {
    app.conn.sendTagged({ "+typing": "active" }, "TAGMSG", buffer.name);
    app.typingSent = now;
    app.typingTarget = buffer.name;
  }
}

function stopTyping() {
  if (app.typingTarget && canTag()) app.conn.sendTagged({ "+typing": "done" }, "TAGMSG", app.typingTarget);
  app.typingTarget = null;
  app.typingSent = 0;
}

// ---- replies and reactions ---------------------------------------------

function startReply(entry) {
  app.replyTo = entry.id;
  $("reply-bar").hidden = false;
  $("reply-text").textContent = `Replying to ${entry.nick}: ${entry.text.slice(0, 80)}`;
  $("input").focus();
}

function cancelReply() {
  app.replyTo = null;
  $("reply-bar").hidden = true;
}

function react(buffer, entry, emoji) {
  app.conn.sendTagged({ "+draft/react": emoji, "+draft/reply": entry.id }, "TAGMSG", buffer.name);
  if (!app.conn.caps.has("echo-message")) {
    buffer.react(entry.id, emoji, app.conn.nick);
    scheduleRender();
  }
}

// ---- notifications -------------------------------------------------------

function notify(buffer, entry) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const title = buffer.kind === "query" ? entry.nick : `${entry.nick} in ${buffer.name}`;
  const notification = new Notification(title, { body: entry.text.slice(0, 200), tag: keyOf(buffer) });
  notification.addEventListener("click", () => {
    window.focus();
    switchTo(buffer);
  });
}

// ---- rendering -------------------------------------------------------------

function scheduleRender() {
  if (app.renderQueued) return;
  app.renderQueued = true;
  queueMicrotask(() => {
    app.renderQueued = false;
    render();
  });
}

function render() {
  const focused = document.activeElement;
  const list = focused && focused.dataset.name ? focused.closest("ul") : null;
  renderBuffers();
  renderHeader();
  renderMessages();
  renderMembers();
  if (list && !list.contains(focused)) {
    // the list was drawn anew: focus the new button of the same name
    const twin = [...list.querySelectorAll("button")].find((b) => b.dataset.name === focused.dataset.name);
    if (twin) twin.focus();
  }
  renderTyping();
  renderHistoryStatus();
  const unread = [...app.buffers.values()].reduce((n, b) => n + b.unread, 0);
  document.title = unread ? `(${unread}) Chat` : "Chat";
}

function renderBuffers() {
  const list = $("buffers");
  const elsewhere = [...app.buffers.values()].some((b) => keyOf(b) !== app.active && (b.unread || b.mention));
  $("toggle-sidebar").classList.toggle("has-unread", elsewhere);
  const order = { server: 0, channel: 1, query: 2 };
  const buffers = [...app.buffers.values()].sort(
    (a, b) => order[a.kind] - order[b.kind] || a.name.localeCompare(b.name),
  );
  list.replaceChildren(
    ...buffers.map((buffer) => {
      const item = el("li");
      const button = el("button", "buffer");
      button.type = "button";
      button.dataset.name = buffer.name;
      if (keyOf(buffer) === app.active) {
        button.classList.add("active");
        button.setAttribute("aria-current", "true");
      }
      if (buffer.kind === "channel" && !buffer.joined) button.classList.add("parted");
      button.append(el("span", "buffer-name", buffer.kind === "server" ? app.conn?.isupport.get("NETWORK") || "Server" : buffer.name));
      if (buffer.mention) button.append(el("span", "mention", "@"));
      if (buffer.unread) button.append(el("span", "unread", String(buffer.unread)));
      button.addEventListener("click", () => {
        switchTo(buffer);
        $("input").focus();
      });
      item.append(button);
      return item;
    }),
  );
}

function renderHeader() {
  const buffer = activeBuffer();
  $("buffer-name").textContent = buffer.kind === "server" ? app.conn?.isupport.get("NETWORK") || "Server" : buffer.name;
  const topic = $("topic");
  topic.replaceChildren();
  appendText(topic, buffer.kind === "channel" ? buffer.topic : "");
  $("network").textContent = app.conn?.isupport.get("NETWORK") || "Chat";
}

function renderMessages() {
  const container = $("messages");
  const list = $("message-list");
  const buffer = activeBuffer();
  const signature = `${app.active} ${buffer.version} ${app.conn ? app.conn.nick : ""} ${canTag()}`;
  if (signature === app.renderedSignature) {
    app.prependRender = false;
    return;
  }
  app.renderedSignature = signature;
  const focused = list.contains(document.activeElement) ? document.activeElement : null;
  const focusLine = focused && focused.closest(".line");
  const fromBottom = container.scrollHeight - container.scrollTop;
  const atBottom = fromBottom - container.clientHeight < 40;
  const previousTop = container.scrollTop;
  const highlight = app.conn ? mentionPattern(app.conn.nick) : null;
  const nodes = [];
  let group = null;
  let last = null;
  for (const entry of buffer.messages) {
    if (entry.kind === "event" || entry.kind === "error") {
      nodes.push(el("div", `event ${entry.kind}`, `${clock(entry.time)} · ${entry.text}`));
      group = null;
      last = null;
      continue;
    }
    if (entry.kind === "action") {
      // "* nick does something" stands alone, its time in a tooltip
      const alone = el("div", "group action-only");
      const actionLine = renderLine(buffer, entry, highlight);
      actionLine.title = new Date(entry.time).toLocaleString();
      alone.append(actionLine);
      nodes.push(alone);
      group = null;
      last = null;
      continue;
    }
    const joinable = last && last.nick === entry.nick && entry.time - last.time < GROUP_MS;
    if (!joinable) {
      group = el("div", "group");
      if (entry.self) group.classList.add("self");
      const head = el("div", "group-head");
      head.append(el("span", `nick ${nickClass(entry.nick)}`, entry.nick));
      const time = el("time", "time", clock(entry.time));
      time.dateTime = new Date(entry.time).toISOString();
      time.title = new Date(entry.time).toLocaleString();
      head.append(time);
      group.append(head);
      nodes.push(group);
    }
    group.append(renderLine(buffer, entry, highlight));
    last = entry;
  }
  list.replaceChildren(...nodes);
  if (focusLine) refocus(list, focusLine.dataset.msgid, focused);
  if (atBottom && !app.prependRender) container.scrollTop = container.scrollHeight;
  else if (app.prependRender) container.scrollTop = container.scrollHeight - fromBottom;
  else container.scrollTop = previousTop;
  app.prependRender = false;
}

/** Focus the new counterpart of *old*, a button of the line *msgid*. */
function refocus(list, msgid, old) {
  const line = [...list.querySelectorAll(".line")].find((l) => l.dataset.msgid === msgid);
  const twin = line && [...line.querySelectorAll("button")].find((b) => b.className === old.className && b.textContent === old.textContent);
  if (twin) twin.focus();
}

function renderLine(buffer, entry, highlight) {
  const line = el("div", `line ${entry.kind}`);
  line.dataset.msgid = entry.id;
  if (entry.mention) line.classList.add("mentioned");
  if (entry.replyTo) {
    const parent = buffer.ids.get(entry.replyTo);
    line.append(el("div", "reply-quote", parent ? `↪ ${parent.nick}: ${parent.text.slice(0, 100)}` : "↪ reply"));
  }
  const text = el("span", "text");
  if (entry.kind === "action") text.append(el("span", `nick ${nickClass(entry.nick)}`, `${entry.nick} `));
  appendText(text, entry.text, entry.self ? null : highlight);
  line.append(text);
  if (entry.reactions.size) {
    const reactions = el("div", "reactions");
    for (const [emoji, nicks] of entry.reactions) {
      const chip = el("span", "reaction", `${emoji} ${nicks.size}`);
      chip.title = [...nicks].join(", ");
      reactions.append(chip);
    }
    line.append(reactions);
  }
  if (canTag() && entry.fromServer && entry.id && !entry.id.startsWith("local-") && buffer.kind !== "server") {
    const actions = el("div", "actions");
    const replyButton = el("button", "action-reply", "Reply");
    replyButton.type = "button";
    replyButton.addEventListener("click", () => startReply(entry));
    actions.append(replyButton);
    for (const emoji of REACTIONS.slice(0, 3)) {
      const button = el("button", "action-react", emoji);
      button.type = "button";
      button.setAttribute("aria-label", `React ${emoji}`);
      button.addEventListener("click", () => react(buffer, entry, emoji));
      actions.append(button);
    }
    line.append(actions);
  }
  return line;
}

function renderMembers() {
  const buffer = activeBuffer();
  const list = $("member-list");
  const visible = buffer.kind === "channel";
  document.body.classList.toggle("no-members", !visible);
  if (!visible) {
    list.replaceChildren();
    $("member-count").textContent = "";
    return;
  }
  const symbols = app.conn ? app.conn.prefixes().symbols : "@+";
  const members = buffer.sortedMembers(symbols);
  $("member-count").textContent = `${members.length} ${members.length === 1 ? "person" : "people"}`;
  list.replaceChildren(
    ...members.map((member) => {
      const item = el("li");
      const button = el("button", "member");
      button.type = "button";
      button.dataset.name = member.nick;
      button.append(el("span", "prefix", member.prefix.slice(0, 1)));
      button.append(el("span", `nick ${nickClass(member.nick)}`, member.nick));
      button.addEventListener("click", () => openQuery(member.nick));
      item.append(button);
      return item;
    }),
  );
}

function renderTyping() {
  const buffer = activeBuffer();
  const now = Date.now();
  for (const [nick, until] of buffer.typing) if (until < now) buffer.typing.delete(nick);
  const nicks = [...buffer.typing.keys()];
  let text = "";
  if (nicks.length === 1) text = `${nicks[0]} is typing…`;
  else if (nicks.length === 2) text = `${nicks[0]} and ${nicks[1]} are typing…`;
  else if (nicks.length > 2) text = "Several people are typing…";
  $("typing").textContent = text;
}

function renderHistoryStatus() {
  const buffer = activeBuffer();
  let text = "";
  if (buffer.loading) text = "Loading history…";
  else if (buffer.historyComplete && buffer.kind !== "server") text = "Beginning of the conversation";
  $("history-status").textContent = text;
}

function renderStatus(detail) {
  const status = $("status");
  status.dataset.state = detail.state;
  if (detail.state === "connecting") status.textContent = "Connecting…";
  else if (detail.state === "waiting") status.textContent = `Reconnecting in ${Math.round(detail.delay / 1000)} s…`;
  else if (detail.state === "online") status.textContent = "Online";
  else status.textContent = "Offline";
}

// ---- session ---------------------------------------------------------------

function showLogin(error = "") {
  $("chat").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !error;
  $("login-error").textContent = error;
  $("nick").focus();
}

function startSession(login, channels) {
  app.buffers = new Map();
  app.active = SERVER;
  app.wanted = new Set(channels);
  const conn = new Connection(websocketUrl(), login);
  app.conn = conn;
  getBuffer("server", "server");
  conn.addEventListener("message", (event) => onMessage(event.detail));
  conn.addEventListener("batch", (event) => onBatch(event.detail));
  conn.addEventListener("status", (event) => {
    renderStatus(event.detail);
    if (event.detail.state === "waiting") {
      for (const buffer of app.buffers.values()) {
        buffer.joined = false;
        buffer.loading = null;
        buffer.typing.clear();
      }
      note(activeBuffer(), `Disconnected; reconnecting in ${Math.round(event.detail.delay / 1000)} s.`, "error");
      scheduleRender();
    }
  });
  conn.addEventListener("notice", (event) => note(getBuffer("server", "server"), event.detail.text));
  conn.addEventListener("failure", (event) => {
    if (event.detail.fatal) {
      app.conn = null;
      showLogin(event.detail.text);
    }
  });
  conn.addEventListener("registered", (event) => {
    renderStatus({ state: "online" });
    app.prefs.nick = conn.nick;
    storage.save(app.prefs);
    const names = [...app.wanted];
    if (names.length) conn.send("JOIN", names.join(","));
    if (event.detail.reconnect) {
      for (const buffer of app.buffers.values()) if (buffer.kind === "query") requestRecent(buffer);
    } else if (names.length) {
      getBuffer(names[0], "channel").wantFocus = true;
    }
    scheduleRender();
  });
  $("login").hidden = true;
  $("chat").hidden = false;
  render();
  conn.start();
  $("input").focus();
}

function readLogin() {
  const mode = document.querySelector('input[name="mode"]:checked').value;
  const nick = $("nick").value.trim();
  const account = $("account").value.trim();
  const password = $("password").value;
  const channels = $("channels").value.split(/[\s,]+/).filter(Boolean).map((c) => (/^[#&]/.test(c) ? c : `#${c}`));
  const login = { nick };
  if (mode !== "guest") {
    Object.assign(login, { account: account || nick, password });
    if (mode === "register") Object.assign(login, { register: true, email: $("email").value.trim() });
  }
  app.prefs = {
    nick,
    account: mode === "guest" ? "" : account,
    channels,
    rememberPassword: $("remember").checked && mode !== "guest",
    password: $("remember").checked ? password : "",
  };
  storage.save(app.prefs);
  return { login, channels };
}

function fillLogin() {
  const prefs = app.prefs;
  $("nick").value = prefs.nick || "";
  $("account").value = prefs.account || "";
  $("channels").value = (prefs.channels || []).join(" ");
  if (prefs.rememberPassword) {
    $("password").value = prefs.password || "";
    $("remember").checked = true;
  }
  if (prefs.account) document.querySelector('input[name="mode"][value="login"]').checked = true;
  updateAccountFields();
}

function updateAccountFields() {
  const mode = document.querySelector('input[name="mode"]:checked').value;
  $("account-fields").hidden = mode === "guest";
  $("email-row").hidden = mode !== "register";
  $("password").required = mode !== "guest";
  $("password").autocomplete = mode === "register" ? "new-password" : "current-password";
}

/** Open a phone drawer and put the keyboard focus in it. */
function openDrawer(className, focusSelector) {
  document.body.classList.toggle(className);
  if (!document.body.classList.contains(className)) return;
  const target = document.querySelector(focusSelector);
  if (target) requestAnimationFrame(() => target.focus());
}

function moveBuffer(step) {
  const buttons = [...document.querySelectorAll("#buffers .buffer")];
  const index = buttons.findIndex((b) => b.classList.contains("active"));
  const next = buttons[(index + step + buttons.length) % buttons.length];
  if (next) next.click();
}

function onInputKey(event) {
  const input = $("input");
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  } else if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
    event.preventDefault();
    moveBuffer(event.key === "ArrowUp" ? -1 : 1);
  } else if (event.key === "ArrowUp" && !input.value.slice(0, input.selectionStart).includes("\n")) {
    if (!app.inputHistory.length) return;
    event.preventDefault();
    if (app.historyIndex < 0) app.draft = input.value;
    app.historyIndex = Math.min(app.historyIndex + 1, app.inputHistory.length - 1);
    input.value = app.inputHistory[app.inputHistory.length - 1 - app.historyIndex];
  } else if (event.key === "ArrowDown" && app.historyIndex >= 0 && !input.value.slice(input.selectionEnd).includes("\n")) {
    event.preventDefault();
    app.historyIndex--;
    input.value = app.historyIndex < 0 ? app.draft : app.inputHistory[app.inputHistory.length - 1 - app.historyIndex];
  } else if (event.key === "Escape") {
    cancelReply();
  }
}

function setUp() {
  fillLogin();
  for (const radio of document.querySelectorAll('input[name="mode"]')) radio.addEventListener("change", updateAccountFields);
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const { login, channels } = readLogin();
    if (!login.nick) return;
    startSession(login, channels);
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("input");
    const text = input.value;
    if (!text.trim() || !app.conn) return;
    app.inputHistory.push(text);
    if (app.inputHistory.length > 100) app.inputHistory.shift();
    app.historyIndex = -1;
    input.value = "";
    stopTyping();
    for (const line of text.split("\n")) if (line.trim()) runInput(line);
  });
  $("input").addEventListener("keydown", onInputKey);
  $("input").addEventListener("input", onInputTyping);
  $("reply-cancel").addEventListener("click", cancelReply);
  $("messages").addEventListener("scroll", () => {
    if ($("messages").scrollTop < 40) requestOlder(activeBuffer());
  });
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("join-input").value.trim();
    $("join-input").value = "";
    if (!name || !app.conn) return;
    if (app.conn.isChannel(name)) joinChannel(name);
    else openQuery(name);
    $("input").focus();
  });
  $("toggle-sidebar").addEventListener("click", () => openDrawer("show-sidebar", "#buffers .buffer.active"));
  $("toggle-members").addEventListener("click", () => openDrawer("show-members", "#member-list .member"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && /show-(sidebar|members)/.test(document.body.className)) {
      document.body.classList.remove("show-sidebar", "show-members");
      $("input").focus();
    }
  });
  $("logout").addEventListener("click", () => {
    if (app.conn) app.conn.stop();
    app.conn = null;
    // Logging out forgets a remembered password; the nick and channels stay.
    app.prefs.rememberPassword = false;
    app.prefs.password = "";
    storage.save(app.prefs);
    $("password").value = "";
    $("remember").checked = false;
    showLogin();
  });
  const notifyButton = $("notify");
  if ("Notification" in window && Notification.permission === "default") {
    notifyButton.hidden = false;
    notifyButton.addEventListener("click", async () => {
      await Notification.requestPermission();
      notifyButton.hidden = Notification.permission !== "default";
    });
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      const buffer = activeBuffer();
      buffer.unread = 0;
      buffer.mention = false;
      scheduleRender();
    }
  });
  window.addEventListener("online", () => app.conn && app.conn.retryNow());
  setInterval(renderTyping, 1000);
  showLogin();
  if (app.prefs.nick) $("connect").focus();
}

setUp();
