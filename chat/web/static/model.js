// The client's state (the connection, the conversations, what the user
// chose) and the lookups every other module shares.

import { Buffer } from "./state.js";
import { mentionPattern } from "./format.js";
import * as storage from "./storage.js";
import { scheduleRender } from "./view.js";

export const SERVER = "*server*";
export const $ = (id) => document.getElementById(id);

export const app = {
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
  wanted: new Map(), // channels to be in: folded name -> name (kept in storage)
  prefs: storage.load(),
};

export function fold(name) {
  return app.conn ? app.conn.casefold(name) : name.toLowerCase();
}

export function getBuffer(name, kind) {
  const key = kind === "server" ? SERVER : fold(name);
  let buffer = app.buffers.get(key);
  if (!buffer) {
    buffer = new Buffer(name, kind);
    app.buffers.set(key, buffer);
    scheduleRender();
  }
  return buffer;
}

export function findBuffer(name) {
  return app.buffers.get(fold(name)) || null;
}

export function keyOf(buffer) {
  return buffer.kind === "server" ? SERVER : fold(buffer.name);
}

export function activeBuffer() {
  return app.buffers.get(app.active) || getBuffer("server", "server");
}

export function closeBuffer(buffer) {
  app.buffers.delete(keyOf(buffer));
  if (app.active === keyOf(buffer)) app.active = SERVER;
  scheduleRender();
}

export function rememberChannels() {
  app.prefs.channels = [...app.wanted.values()];
  storage.save(app.prefs);
}

export function note(buffer, text, kind = "event") {
  buffer.add({ time: Date.now(), kind, text, nick: "" });
  if (keyOf(buffer) === app.active) scheduleRender();
}

export function isMention(text) {
  return app.conn && mentionPattern(app.conn.nick).test(text);
}
