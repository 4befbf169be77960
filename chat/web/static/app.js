// The web client's entry point: the login form, the session and the
// page's controls and keys.

import { Connection } from "./connection.js";
import * as storage from "./storage.js";
import { onBatch, onMessage, requestConversations, requestOlder, requestRecent } from "./incoming.js";
import { $, SERVER, activeBuffer, app, fold, getBuffer, note } from "./model.js";
import { cancelReply, joinChannel, onInputTyping, openQuery, runInput, stopTyping } from "./outgoing.js";
import { render, renderStatus, renderTyping, scheduleRender } from "./view.js";

/** The WebSocket address: /socket on the page's own origin (see chat/web). */
function websocketUrl(loc = location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/socket`;
}

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
  const conn = new Connection(websocketUrl(), login);
  app.conn = conn;
  app.wanted = new Map(channels.map((name) => [fold(name), name]));
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
    const names = [...app.wanted.values()];
    if (names.length) conn.send("JOIN", names.join(","));
    if (event.detail.reconnect) {
      for (const buffer of app.buffers.values()) if (buffer.kind === "query") requestRecent(buffer);
    } else {
      if (names.length) getBuffer(names[0], "channel").wantFocus = true;
      requestConversations();
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
