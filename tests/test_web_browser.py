"""The browser client in headless Chromium (Playwright) against a real server.

The server runs in trial's reactor, as in the other end-to-end tests.
Playwright's sync API runs its own event loop, so each browser script runs
in one worker thread (`deferToThread`) and does its reactor-side steps (an
IRC client over TLS, a server restart) through `Browser.on_reactor`.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.threads import blockingCallFromThread, deferToThread
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SkipTest, TestCase

from chat.config import ServerConfig
from tests.e2e_support import (
    TLS_LOOPBACK,
    LineClient,
    RunningServer,
    is_command,
    port_of,
    start_server,
)
from tests.support import UNPACED

T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: The README's picture of the client, made by `test_phone_layout_screenshot`.
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "web-client.png"
#: Milliseconds Playwright waits for one expectation.
WAIT_MS = 15_000
PHONE = {"width": 390, "height": 844}


def serve_client(case: TestCase, web_port: int = 0, **settings: Any) -> WebServer:
    """The whole service with a TLS IRC listener and a web listener
    (HTTPS and WSS) on 127.0.0.1, *web_port* or any free port (unlike
    `tests.web_support.start_web_server`, a restart can keep the port)."""
    web = f"web:tls:tcp:{web_port}:interface=127.0.0.1"
    return WebServer(start_server(case, TLS_LOOPBACK, web, **settings))


class WebServer:
    """A `RunningServer` and its web listener's port."""

    def __init__(self, running: RunningServer) -> None:
        self.running = running
        self.client = running.client
        self.stop = running.stop
        (listener,) = [
            listener
            for listener in running.service.listeners
            if listener.description.startswith("web:")
        ]
        self.web_port = port_of(listener.port)

    @property
    def url(self) -> str:
        """The client's page."""
        return f"https://localhost:{self.web_port}/"


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install '.[test]')"
    return None


class Browser:
    """One Chromium for one test, used only from the worker thread."""

    def __init__(self, playwright_browser: Any, url: str) -> None:
        self.browser = playwright_browser
        self.url = url
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        #: Every WebSocket message the pages sent.
        self.sent: list[str | bytes] = []

    def on_reactor(self, step: Callable[[], Awaitable[T]]) -> T:
        """Run *step* (giving a coroutine or a Deferred) in the reactor
        thread and wait for its result."""

        def start() -> Deferred[T]:
            return ensureDeferred(step())  # type: ignore[arg-type]

        return blockingCallFromThread(reactor, start)  # type: ignore[no-any-return]

    def page(
        self,
        viewport: dict[str, int] | None = None,
        color_scheme: str = "light",
        **context: Any,
    ) -> Any:
        """A fresh browser profile showing the client's login form."""
        ctx = self.browser.new_context(
            ignore_https_errors=True,
            viewport=viewport or {"width": 1100, "height": 720},
            color_scheme=color_scheme,
            **context,
        )
        ctx.set_default_timeout(WAIT_MS)
        page = ctx.new_page()
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)
        page.on("websocket", self._websocket)
        page.goto(self.url)
        return page

    def _websocket(self, socket: Any) -> None:
        socket.on("framesent", lambda payload: self.sent.append(payload))

    def _console(self, message: Any) -> None:
        """Keep CSP violations: the client must need no inline code or style."""
        if "Content Security Policy" in message.text:
            self.errors.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def log_in(
        self,
        nick: str,
        channels: str = "",
        mode: str = "guest",
        account: str = "",
        password: str = "",
        page: Any = None,
        online: bool = True,
        remember: bool = False,
        **options: Any,
    ) -> Any:
        """Fill in the login form and connect; wait until online."""
        page = page or self.page(**options)
        page.fill("#nick", nick)
        page.check(f'input[name="mode"][value="{mode}"]')
        if mode != "guest":
            page.fill("#account", account)
            page.fill("#password", password)
            if remember:
                page.check("#remember")
        page.fill("#channels", channels)
        page.click("#connect")
        if online:
            expect(page.locator("#status")).to_have_text("Online")
        if channels:
            first = channels.split()[0]
            expect(page.locator("#buffer-name")).to_have_text(first)
        return page


def expect(target: Any) -> Any:
    """Playwright's `expect`, waiting up to `WAIT_MS`."""
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=WAIT_MS)
    return playwright_expect(target)


def say(page: Any, text: str) -> None:
    """Type *text* in the composer and press Enter."""
    page.fill("#input", text)
    page.press("#input", "Enter")


def line(page: Any, text: str) -> Any:
    """The message lines of the shown conversation containing *text*."""
    return page.locator("#message-list .line .text", has_text=text)


def open_buffer(page: Any, name: str) -> None:
    page.click(f'#buffers .buffer[data-name="{name}"]')
    expect(page.locator("#buffer-name")).to_have_text(name)


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


class BrowserTestCase(TestCase):
    """Starts a server with the web listener and runs browser scripts."""

    timeout = 120

    def setUp(self) -> None:
        reason = missing_browser()
        if reason is not None:
            if os.environ.get("CI"):
                self.fail(f"CI must run the browser tests: {reason}")
            raise SkipTest(reason)

    def run_browser(
        self, url: str, script: Callable[[Browser], None]
    ) -> Deferred[None]:
        """Run *script* with a fresh Chromium in a worker thread."""

        def run() -> Browser:
            with chromium() as launched:
                browser = Browser(launched, url)
                script(browser)
                return browser

        def check(browser: Browser) -> None:
            self.assertEqual(browser.dialogs, [], "a dialog opened")
            self.assertEqual(browser.errors, [], "the page threw or broke its CSP")

        return deferToThread(run).addCallback(check)


class ChatTests(BrowserTestCase):
    """Two browsers and a TLS IRC client talk in one channel."""

    async def test_browsers_and_tls_client_chat(self) -> None:
        server = serve_client(self)
        carol = await server.client("carol")
        carol.send("JOIN", "#web")
        await carol.wait_for(is_command("366"))

        def script(b: Browser) -> None:
            alice = b.log_in("alice", "#web")
            bob = b.log_in("bob", "#web")
            members = alice.locator("#member-list .member")
            expect(members).to_have_count(3)
            expect(
                alice.locator("#member-list .member", has_text="carol")
            ).to_contain_text("@")
            expect(alice.locator("#member-count")).to_have_text("3 people")
            b.on_reactor(lambda: _send(carol, "MODE", "#web", "+o", "alice"))
            alice_entry = bob.locator("#member-list .member", has_text="alice")
            expect(alice_entry.locator(".prefix")).to_have_text("@")

            say(alice, "hello from alice")
            expect(line(bob, "hello from alice")).to_be_visible()
            privmsg = b.on_reactor(
                lambda: carol.wait_for(is_command("PRIVMSG", "#web"))
            )
            assert privmsg.params[1] == "hello from alice", privmsg
            assert privmsg.source is not None and privmsg.source.startswith("alice!")

            b.on_reactor(lambda: _send(carol, "PRIVMSG", "#web", "hi browsers"))
            for page in (alice, bob):
                expect(line(page, "hi browsers")).to_be_visible()
            # alice's consecutive lines share one header; carol's start a group
            expect(bob.locator(".group-head .nick", has_text="carol")).to_have_count(1)

            say(bob, "/me waves")
            expect(alice.locator(".line.action", has_text="bob waves")).to_be_visible()
            action = b.on_reactor(lambda: carol.wait_for(is_command("PRIVMSG", "#web")))
            assert action.params[1] == "\x01ACTION waves\x01", action

            say(alice, "/topic Release on Friday")
            expect(bob.locator("#topic")).to_have_text("Release on Friday")
            topic = b.on_reactor(lambda: carol.wait_for(is_command("TOPIC", "#web")))
            assert topic.params[1] == "Release on Friday", topic

            # private conversations, with unread counts and a mention marker
            say(bob, "/msg alice psst alice")
            entry = alice.locator('#buffers .buffer[data-name="bob"]')
            expect(entry.locator(".unread")).to_have_text("1")
            expect(entry.locator(".mention")).to_be_visible()
            b.on_reactor(lambda: _send(carol, "PRIVMSG", "alice", "from the terminal"))
            open_buffer(alice, "carol")
            expect(line(alice, "from the terminal")).to_be_visible()
            say(alice, "hello terminal")
            reply = b.on_reactor(lambda: carol.wait_for(is_command("PRIVMSG", "carol")))
            assert reply.params[1] == "hello terminal", reply
            open_buffer(alice, "bob")
            expect(line(alice, "psst alice")).to_be_visible()
            expect(entry.locator(".unread")).to_have_count(0)

            # a channel message naming alice marks the channel
            open_buffer(alice, "carol")
            b.on_reactor(lambda: _send(carol, "PRIVMSG", "#web", "alice: look"))
            channel = alice.locator('#buffers .buffer[data-name="#web"]')
            expect(channel.locator(".mention")).to_be_visible()
            open_buffer(alice, "#web")
            expect(
                alice.locator(".line.mentioned", has_text="alice: look")
            ).to_be_visible()

        await self.run_browser(server.url, script)

    async def test_commands_input_history_and_storage(self) -> None:
        server = serve_client(self)
        dave = await server.client("dave")

        def script(b: Browser) -> None:
            page = b.log_in("erin", "#one")
            say(page, "/join #two")
            expect(page.locator("#buffer-name")).to_have_text("#two")
            say(page, "/nick erin2")
            expect(
                page.locator("#member-list .member", has_text="erin2")
            ).to_be_visible()
            say(page, "/part #one")
            expect(page.locator('#buffers .buffer[data-name="#one"]')).to_have_count(0)
            say(page, "/away lunch")
            expect(
                page.locator(".event", has_text="marked as being away")
            ).to_be_visible()
            say(page, "/bogus")
            expect(
                page.locator(".event.error", has_text="Unknown command /bogus")
            ).to_be_visible()

            # Up and Down walk the input history
            page.press("#input", "ArrowUp")
            expect(page.locator("#input")).to_have_value("/bogus")
            page.press("#input", "ArrowUp")
            expect(page.locator("#input")).to_have_value("/away lunch")
            page.press("#input", "ArrowDown")
            page.press("#input", "ArrowDown")
            expect(page.locator("#input")).to_have_value("")

            # a long line goes out in pieces that fit IRC's 512 bytes
            long = "\u00e9" * 500
            say(page, f"/msg dave {long}")
            pieces = b.on_reactor(lambda: _privmsgs(dave, "dave", len(long)))
            assert "".join(pieces) == long, pieces
            assert all(len(p.encode()) <= 350 for p in pieces), pieces
            open_buffer(page, "#two")
            whois = b.on_reactor(lambda: _whois(dave, "erin2"))
            assert "#two" in whois["319"].params[-1], whois
            assert whois["301"].params[-1] == "lunch", whois

            stored = json.loads(page.evaluate("localStorage.getItem('chat-web')"))
            assert stored == {"nick": "erin2", "account": "", "channels": ["#two"]}, (
                stored
            )

            # a reload fills the form from what was kept
            page.reload()
            expect(page.locator("#nick")).to_have_value("erin2")
            expect(page.locator("#channels")).to_have_value("#two")

        await self.run_browser(server.url, script)


class ConnectionTests(BrowserTestCase):
    """A first connection that never gets through is reported."""

    async def test_unreachable_server_is_reported(self) -> None:
        server = serve_client(self)

        def script(b: Browser) -> None:
            page = b.page()
            b.on_reactor(server.stop)
            b.log_in("kim", page=page, online=False)
            expect(page.locator("#status")).to_contain_text("Reconnecting")
            expect(page.locator("#login-error")).to_have_text(
                "Could not connect to the chat server. Try again later."
            )
            expect(page.locator("#nick")).to_have_value("kim")

        await self.run_browser(server.url, script)


class TagTests(BrowserTestCase):
    """Typing notifications, reactions and replies between two browsers."""

    async def test_typing_reactions_and_replies(self) -> None:
        server = serve_client(self)

        def script(b: Browser) -> None:
            alice = b.log_in("alice", "#tags")
            bob = b.log_in("bob", "#tags")
            bob.locator("#input").press_sequentially("typing")
            expect(alice.locator("#typing")).to_have_text("bob is typing…")
            bob.press("#input", "Enter")
            expect(line(alice, "typing")).to_be_visible()
            expect(alice.locator("#typing")).to_have_text("")

            message = alice.locator(".line", has_text="typing")
            message.hover()
            message.get_by_role("button", name="React 👍").click()
            reaction = bob.locator(".line", has_text="typing").locator(".reaction")
            expect(reaction).to_have_text("👍 1")

            message.get_by_role("button", name="Reply").click()
            expect(alice.locator("#reply-bar")).to_contain_text("Replying to bob")
            say(alice, "an answer")
            quote = bob.locator(".line", has_text="an answer").locator(".reply-quote")
            expect(quote).to_have_text("↪ bob: typing")
            expect(alice.locator("#reply-bar")).to_be_hidden()

        await self.run_browser(server.url, script)


class HistoryTests(BrowserTestCase):
    """CHATHISTORY on join, on scrolling up, and after a server restart."""

    async def test_history_on_join_and_on_scroll(self) -> None:
        # carol floods on purpose, to make history quickly
        base = ServerConfig(server_name="irc.test", network="TestNet", limits=UNPACED)
        server = serve_client(self, config=base)
        carol = await server.client("carol")
        carol.send("JOIN", "#hist")
        for n in range(120):
            carol.send("PRIVMSG", "#hist", f"old {n:03}")
        await carol.sync()

        def script(b: Browser) -> None:
            page = b.log_in("alice", "#hist")
            expect(line(page, "old 119")).to_be_visible()
            expect(line(page, "old 070")).to_be_attached()
            expect(line(page, "old 069")).to_have_count(0)
            # each scroll to the top loads the page of 50 before the oldest
            for oldest in ("old 020", "old 000"):
                page.evaluate("document.getElementById('messages').scrollTop = 0")
                expect(line(page, oldest)).to_be_attached()
            expect(line(page, "old 000")).to_be_attached()
            texts = page.locator("#message-list .line .text").all_text_contents()
            assert texts == [f"old {n:03}" for n in range(120)], texts
            page.evaluate("document.getElementById('messages').scrollTop = 0")
            expect(page.locator("#history-status")).to_have_text(
                "Beginning of the conversation"
            )

        await self.run_browser(server.url, script)

    async def test_reconnect_after_restart_fills_the_gap(self) -> None:
        data_dir = Path(self.mktemp())
        cert_dir = Path(self.mktemp())
        first = serve_client(self, data_dir=data_dir, cert_dir=cert_dir)
        port = first.web_port
        carol = await first.client("carol")
        carol.send("JOIN", "#gap")
        await carol.wait_for(is_command("366"))

        async def restart_with_gap() -> None:
            await first.stop()
            # While the web port is closed, another server on the same data
            # makes history the browser has not seen.
            middle = serve_client(self, data_dir=data_dir, cert_dir=cert_dir)
            writer = await middle.client("carol")
            writer.send("JOIN", "#gap")
            for n in range(3):
                writer.send("PRIVMSG", "#gap", f"missed {n}")
            await writer.sync()
            await middle.stop()
            serve_client(self, web_port=port, data_dir=data_dir, cert_dir=cert_dir)

        def script(b: Browser) -> None:
            page = b.log_in("alice", "#gap")
            b.on_reactor(lambda: _send(carol, "PRIVMSG", "#gap", "before the restart"))
            expect(line(page, "before the restart")).to_be_visible()
            b.on_reactor(restart_with_gap)
            expect(page.locator("#status")).to_have_text("Online", timeout=45_000)
            for n in range(3):
                expect(line(page, f"missed {n}")).to_be_visible()
            expect(line(page, "before the restart")).to_have_count(1)
            expect(page.locator("#buffer-name")).to_have_text("#gap")
            expect(
                page.locator("#member-list .member", has_text="alice")
            ).to_be_visible()

        await self.run_browser(first.url, script)


class SecurityTests(BrowserTestCase):
    """Hostile text stays text; other origins cannot open the WebSocket."""

    async def test_hostile_text_renders_inert(self) -> None:
        server = serve_client(self)
        carol = await server.client("carol")
        carol.send("JOIN", "#x")
        await carol.wait_for(is_command("366"))
        carol.send("TOPIC", "#x", "<b>bold</b> <script>alert(3)</script>")
        hostile = [
            "<img src=x onerror=alert(1)>",
            "javascript:alert(2) and [click](javascript:alert(4))",
            "see https://example.invalid/a?b=<img/src=x/onerror=alert(5)>.",
            '"><svg onload=alert(6)>',
        ]

        def script(b: Browser) -> None:
            page = b.log_in("alice", "#x")
            for text in hostile:
                b.on_reactor(lambda text=text: _send(carol, "PRIVMSG", "#x", text))
            b.on_reactor(lambda: _send(carol, "PRIVMSG", "#x", "the end"))
            expect(line(page, "the end")).to_be_visible()
            page.wait_for_timeout(500)  # time for an onerror to fire, if any
            for text in hostile:
                expect(
                    page.locator("#message-list .line .text", has_text=text)
                ).to_have_count(1)
            expect(page.locator("#topic")).to_have_text(
                "<b>bold</b> <script>alert(3)</script>"
            )
            assert page.locator("img").count() == 0, "an img element"
            injected = "#message-list :is(svg, script, b), #topic *:not(a)"
            assert page.locator(injected).count() == 0, "an injected element"
            scripts = page.eval_on_selector_all("script", "s => s.map(e => e.src)")
            assert scripts == [f"{server.url}app.js"], scripts
            hrefs = page.eval_on_selector_all(
                "#message-list a", "links => links.map(a => [a.href, a.rel, a.target])"
            )
            assert hrefs == [
                [
                    "https://example.invalid/a?b=",
                    "noopener noreferrer",
                    "_blank",
                ]
            ], hrefs

        await self.run_browser(server.url, script)

    async def test_wrong_origin_is_refused(self) -> None:
        server = serve_client(self)
        refusals: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            if "Refused a WebSocket" in event.get("log_format", ""):
                refusals.append(event["origin"])

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        socket_url = f"wss://localhost:{server.web_port}/socket"
        probe = f"""
            () => new Promise(resolve => {{
                const ws = new WebSocket("{socket_url}", ["text.ircv3.net"]);
                ws.onopen = () => {{ ws.close(); resolve("open"); }};
                ws.onclose = () => resolve("refused");
                setTimeout(() => resolve("no answer"), 10000);
            }})
        """
        # A page of another origin: the same server under another name (so
        # the browser's rules for public pages reaching loopback do not
        # apply), with the client's CSP set aside, as it would stop it first.
        other_origin = f"https://127.0.0.1:{server.web_port}"

        def script(b: Browser) -> None:
            own = b.page().evaluate(probe)
            assert own == "open", own
            other = b.page(bypass_csp=True)
            other.goto(f"{other_origin}/")
            refused = other.evaluate(probe)
            assert refused == "refused", refused

        await self.run_browser(server.url, script)
        self.assertEqual(refusals, [other_origin])


class AccountTests(BrowserTestCase):
    """REGISTER, then SASL login (SCRAM-SHA-256 from WebCrypto)."""

    async def test_register_then_log_in(self) -> None:
        server = serve_client(self)
        carol = await server.client("carol")
        secret = "correct horse battery"

        def script(b: Browser) -> None:
            first = b.log_in("dana", mode="register", account="dana", password=secret)
            expect(
                first.locator("#message-list", has_text="Account dana created")
            ).to_be_visible()
            b.on_reactor(lambda: _send(carol, "PRIVMSG", "dana", "welcome aboard"))
            expect(first.locator('#buffers .buffer[data-name="carol"]')).to_be_visible()
            first.click("#logout")
            expect(first.locator("#login")).to_be_visible()
            stored = first.evaluate("localStorage.getItem('chat-web')")
            assert secret not in stored, stored

            wrong = b.log_in(
                "dana", mode="login", account="dana", password="not it", online=False
            )
            expect(wrong.locator("#login-error")).to_contain_text("Login failed")

            page = b.log_in(
                "dana", mode="login", account="dana", password=secret, remember=True
            )
            whois = b.on_reactor(lambda: _whois(carol, "dana"))
            assert whois["330"].params[2] == "dana", whois
            # SCRAM from WebCrypto: the password itself never went out
            assert "AUTHENTICATE SCRAM-SHA-256" in b.sent, b.sent
            plain = base64.b64encode(f"\0dana\0{secret}".encode()).decode()
            leaks = [f for f in b.sent if secret in str(f) or plain in str(f)]
            assert [str(f).split()[0] for f in leaks] == ["REGISTER"], leaks
            # a fresh browser finds the account's private conversations again
            open_buffer(page, "carol")
            expect(line(page, "welcome aboard")).to_be_visible()
            stored = json.loads(page.evaluate("localStorage.getItem('chat-web')"))
            assert stored == {
                "nick": "dana",
                "account": "dana",
                "channels": [],
                "rememberPassword": True,
                "password": secret,
            }, stored
            page.click("#logout")
            stored = json.loads(page.evaluate("localStorage.getItem('chat-web')"))
            assert stored == {"nick": "dana", "account": "dana", "channels": []}, stored

        await self.run_browser(server.url, script)


class LayoutTests(BrowserTestCase):
    """A phone-sized screen, keyboard only; the README's screenshot."""

    async def test_keyboard_only(self) -> None:
        server = serve_client(self)

        def script(b: Browser) -> None:
            page = b.page()
            expect(page.locator("#nick")).to_be_focused()
            page.keyboard.type("kim")
            page.keyboard.press("Enter")
            expect(page.locator("#status")).to_have_text("Online")
            expect(page.locator("#input")).to_be_focused()
            page.keyboard.type("/join #keys")
            page.keyboard.press("Enter")
            expect(page.locator("#buffer-name")).to_have_text("#keys")
            page.keyboard.press("Alt+ArrowUp")
            expect(page.locator("#buffers .buffer.active")).not_to_have_attribute(
                "data-name", "#keys"
            )
            page.keyboard.press("Alt+ArrowDown")
            expect(page.locator("#buffer-name")).to_have_text("#keys")
            page.keyboard.type("typed with keys")
            page.keyboard.press("Enter")
            expect(line(page, "typed with keys")).to_be_visible()
            page.keyboard.press("Tab")
            expect(page.locator("#composer button")).to_be_focused()

        await self.run_browser(server.url, script)

    async def test_phone_layout_screenshot(self) -> None:
        server = serve_client(self)
        carol = await server.client("carol")
        carol.send("JOIN", "#team")
        await carol.wait_for(is_command("366"))
        carol.send("TOPIC", "#team", "Release 0.2 on Friday · retro at 15:00")
        carol.send("PRIVMSG", "#team", "Morning! The build is green again.")
        carol.send("PRIVMSG", "#team", "Notes: https://example.org/notes/release")
        await carol.sync()

        def script(b: Browser) -> None:
            bob = b.log_in("bob", "#team")
            say(bob, "Great, I'll tag it after lunch")
            phone = {
                "viewport": PHONE,
                "device_scale_factor": 2,
                "is_mobile": True,
                "has_touch": True,
            }
            alice = b.log_in("alice", "#team", **phone)
            expect(line(alice, "tag it after lunch")).to_be_visible()
            b.on_reactor(
                lambda: _send(
                    carol,
                    "PRIVMSG",
                    "#team",
                    "alice: can you check the web client on your phone?",
                )
            )
            say(bob, "/me is typing the changelog")
            expect(line(alice, "can you check")).to_be_visible()
            say(alice, "Looks good here 🎉")
            bob.locator(".line", has_text="Looks good").hover()
            bob.locator(".line", has_text="Looks good").get_by_role(
                "button", name="React 👍"
            ).click()
            expect(alice.locator(".reaction")).to_have_text("👍 1")
            bob.locator("#input").press_sequentially("ok")
            expect(alice.locator("#typing")).to_have_text("bob is typing…")

            # a private message elsewhere puts a dot on the drawer button
            b.on_reactor(lambda: _send(carol, "PRIVMSG", "alice", "lunch at 12?"))
            expect(alice.locator("#toggle-sidebar.has-unread")).to_be_visible()

            width = alice.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], width
            expect(alice.locator("#sidebar")).to_be_hidden()
            alice.locator("#input").blur()
            SCREENSHOT.parent.mkdir(exist_ok=True)
            alice.screenshot(path=str(SCREENSHOT))

            # the conversation list is a drawer, opened and closed by keyboard
            alice.focus("#toggle-sidebar")
            alice.keyboard.press("Enter")
            active = alice.locator('#buffers .buffer[data-name="#team"]')
            expect(active).to_be_in_viewport()
            expect(active).to_be_focused()
            private = alice.locator('#buffers .buffer[data-name="carol"]')
            expect(private.locator(".unread")).to_have_text("1")
            alice.keyboard.press("Escape")
            expect(alice.locator("#sidebar")).to_be_hidden()

        await self.run_browser(server.url, script)
        header = SCREENSHOT.read_bytes()[:24]
        self.assertEqual(header[:8], b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", header[16:24])
        self.assertEqual((width, height), (PHONE["width"] * 2, PHONE["height"] * 2))


class PageTests(BrowserTestCase):
    """Notifications, colours, and the client's modules run in the page."""

    async def test_notification_on_mention_or_private_message_when_hidden(
        self,
    ) -> None:
        server = serve_client(self)
        carol = await server.client("carol")

        def script(b: Browser) -> None:
            page = b.log_in("alice", "#n", permissions=["notifications"])
            expect(page.locator("#notify")).to_be_hidden()  # already allowed
            page.evaluate(RECORD_NOTIFICATIONS)
            b.on_reactor(lambda: _send(carol, "JOIN", "#n"))
            for text in ("alice: are you there?", "nothing for alice2"):
                b.on_reactor(lambda text=text: _send(carol, "PRIVMSG", "#n", text))
                expect(line(page, text)).to_be_visible()
            b.on_reactor(lambda: _send(carol, "PRIVMSG", "alice", "psst"))
            expect(page.locator('#buffers .buffer[data-name="carol"]')).to_be_visible()
            shown = page.evaluate("window.shown")
            assert shown == [
                ["carol in #n", "alice: are you there?"],
                ["carol", "psst"],
            ], shown
            page.evaluate("hidden = false")
            b.on_reactor(lambda: _send(carol, "PRIVMSG", "#n", "alice: seen?"))
            expect(line(page, "alice: seen?")).to_be_visible()
            assert len(page.evaluate("window.shown")) == 2

        await self.run_browser(server.url, script)

    async def test_light_and_dark(self) -> None:
        server = serve_client(self)

        def script(b: Browser) -> None:
            for scheme, background in (
                ("light", "rgb(255, 255, 255)"),
                ("dark", "rgb(22, 24, 29)"),
            ):
                page = b.log_in("kim", color_scheme=scheme)
                color = page.evaluate("getComputedStyle(document.body).backgroundColor")
                assert color == background, (scheme, color)
                page.context.close()

        await self.run_browser(server.url, script)

    async def test_modules_in_the_page(self) -> None:
        server = serve_client(self)

        def script(b: Browser) -> None:
            result = b.page().evaluate(MODULE_CHECKS)
            assert result["parsed"] == {
                "tags": {"a": "b;c", "d": ""},
                "source": "n!u@h",
                "command": "PRIVMSG",
                "params": ["#x", "hello world"],
            }, result["parsed"]
            serialized = result["serialized"]
            assert serialized == r"@+draft/reply=a\:b\sc PRIVMSG #x ::) hi", serialized
            assert result["backoff"] == [1000, 2000, 4000, 8000, 16000, 30000, 30000]
            assert result["fold"] == "nick{}|^"
            assert result["split"] == ["h\u00e9ll", "o ", "\U0001f389", "\U0001f389"]
            assert result["strip"] == "bold red"
            assert result["commands"] == [
                {"type": "me", "text": "waves"},
                {"type": "say", "text": "/not a command"},
                {"type": "join", "channels": ["#a", "#b"], "key": None},
                {"type": "topic", "channel": "#x", "text": "new topic"},
                {"type": "part", "channel": "#here", "reason": "bye now"},
                {"type": "msg", "target": "bob", "text": "hi there"},
            ], result["commands"]
            assert result["links"] == (
                'x javascript:alert(1) <a href="https://a.example/b" rel="noopener '
                'noreferrer" target="_blank">https://a.example/b</a>). &lt;i&gt;'
            ), result["links"]
            # RFC 7677's example exchange
            assert result["scram"] == [
                "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                "",
            ], result["scram"]

        await self.run_browser(server.url, script)


#: Replaces the Notification API with a recorder and says the tab is hidden.
RECORD_NOTIFICATIONS = """() => {
    window.shown = [];
    window.hidden = true;
    window.Notification = class {
        static get permission() { return "granted"; }
        constructor(title, options) { window.shown.push([title, options.body]); }
        addEventListener() {}
    };
    Object.defineProperty(document, "hidden", { get: () => window.hidden });
}"""

#: Imports the client's modules and runs their pure functions.
MODULE_CHECKS = r"""async () => {
    const irc = await import("/irc.js");
    const commands = await import("/commands.js");
    const connection = await import("/connection.js");
    const format = await import("/format.js");
    const sasl = await import("/sasl.js");
    const p = document.createElement("p");
    format.appendText(p, "x javascript:alert(1) https://a.example/b). <i>");
    const scram = sasl.scramSha256("user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    const server = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        + "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    return {
        parsed: irc.parse("@a=b\\:c;d :n!u@h PRIVMSG #x :hello world"),
        serialized: irc.serialize(
            "PRIVMSG", ["#x", ":) hi"], { "+draft/reply": "a;b c" },
        ),
        backoff: [0, 1, 2, 3, 4, 5, 9].map((n) => connection.backoff(n)),
        fold: irc.casefolder("rfc1459")("Nick[]\\~"),
        split: irc.splitText("h\u00e9llo \u{1F389}\u{1F389}", 5),
        strip: irc.stripFormatting("\x02bold\x02 \x0304,01red\x03"),
        commands: [
            commands.parseInput("/me waves", "#x"),
            commands.parseInput("//not a command", "#x"),
            commands.parseInput("/join a,#b", "#x"),
            commands.parseInput("/topic new topic", "#x"),
            commands.parseInput("/part #here bye now", "#x"),
            commands.parseInput("/msg bob hi there", "#x"),
        ],
        links: p.innerHTML,
        scram: [
            await scram.step(""),
            await scram.step(server),
            await scram.step("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
        ],
    };
}"""


async def _send(client: LineClient, command: str, *params: str) -> None:
    client.send(command, *params)
    await client.sync()


async def _privmsgs(client: LineClient, nick: str, length: int) -> list[str]:
    """The texts of PRIVMSGs to *nick* until they add up to *length*."""
    texts: list[str] = []
    while sum(map(len, texts)) < length:
        message = await client.wait_for(is_command("PRIVMSG", nick))
        texts.append(message.params[1])
    return texts


async def _whois(client: LineClient, nick: str) -> dict[str, Any]:
    """The WHOIS replies about *nick*, by numeric."""
    client.send("WHOIS", nick)
    replies: dict[str, Any] = {}
    while True:
        message = await client.wait_for(lambda m: m.command.isdigit())
        replies[message.command] = message
        if message.command == "318":
            return replies
