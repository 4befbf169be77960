// What the client keeps in this browser's localStorage, under one key:
// the nick, the account name, the open channels and, only when the user
// ticked "remember password", the password.

const KEY = "chat-web";

export function load() {
  try {
    const data = JSON.parse(localStorage.getItem(KEY) || "{}");
    return typeof data === "object" && data ? data : {};
  } catch {
    return {};
  }
}

export function save(data) {
  const kept = {
    nick: data.nick || "",
    account: data.account || "",
    channels: Array.isArray(data.channels) ? data.channels : [],
  };
  if (data.rememberPassword && data.password) {
    kept.rememberPassword = true;
    kept.password = data.password;
  }
  try {
    localStorage.setItem(KEY, JSON.stringify(kept));
  } catch {
    // Storage full or disabled: the client works without it.
  }
}

export function forget() {
  localStorage.removeItem(KEY);
}
