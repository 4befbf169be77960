// What the user does: typed lines and commands, typing notices, replies
// and reactions, sent to the server.

import { parseInput } from "./commands.js";
import { splitText } from "./irc.js";
import { requestRecent } from "./incoming.js";
import { $, activeBuffer, app, closeBuffer, findBuffer, getBuffer, note } from "./model.js";
import { scheduleRender, switchTo } from "./view.js";

const TYPING_SEND_MS = 3000;
/** UTF-8 bytes of text per PRIVMSG: what fits in 512 with the relay's prefix. */
const TEXT_BYTES = 350;

function sendText(buffer, text, action = false) {
  if (buffer.kind === "server") {
    note(buffer, "This is the server buffer: join a channel (/join #name) or /msg a nick.", "error");
    return;
  }
  const tags = {};
  if (app.replyTo) tags["+draft/reply"] = app.replyTo;
  for (const chunk of splitText(text, TEXT_BYTES)) {
    app.conn.sendTagged(tags, "PRIVMSG", buffer.name, action ? `\x01ACTION ${chunk}\x01` : chunk);
  }
  if (!app.conn.caps.has("echo-message")) {
    buffer.add({ time: Date.now(), nick: app.conn.nick, kind: action ? "action" : "privmsg", text, self: true, replyTo: app.replyTo });
    scheduleRender();
  }
  cancelReply();
}

export function openQuery(nick, focus = true) {
  const buffer = getBuffer(nick, "query");
  if (focus) switchTo(buffer);
  requestRecent(buffer);
  return buffer;
}

export function joinChannel(name, key) {
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

export function runInput(text) {
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

export function canTag() {
  return app.conn && app.conn.caps.has("message-tags");
}

export function onInputTyping() {
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

export function stopTyping() {
  if (app.typingTarget && canTag()) app.conn.sendTagged({ "+typing": "done" }, "TAGMSG", app.typingTarget);
  app.typingTarget = null;
  app.typingSent = 0;
}

export function startReply(entry) {
  app.replyTo = entry.id;
  $("reply-bar").hidden = false;
  $("reply-text").textContent = `Replying to ${entry.nick}: ${entry.text.slice(0, 80)}`;
  $("input").focus();
}

export function cancelReply() {
  app.replyTo = null;
  $("reply-bar").hidden = true;
}

export function react(buffer, entry, emoji) {
  app.conn.sendTagged({ "+draft/react": emoji, "+draft/reply": entry.id }, "TAGMSG", buffer.name);
  if (!app.conn.caps.has("echo-message")) {
    buffer.react(entry.id, emoji, app.conn.nick);
    scheduleRender();
  }
}
