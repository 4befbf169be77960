"""The ``twistd chat`` plugin: glue between twistd and `chat.service`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from zope.interface import implementer

if TYPE_CHECKING:
    from twisted.application.service import IService

    from chat.options import Options


@implementer(IServiceMaker, IPlugin)
class ChatServiceMaker:
    """Makes the chat service from ``twistd chat`` options."""

    tapname = "chat"
    description = "An IRC chat server over TLS, with a web client (--web)."

    @property
    def options(self) -> type[Options]:
        from chat.options import Options

        return Options

    def makeService(self, options: Options) -> IService:
        from chat.service import make_supervisor, makeService

        try:
            if options.config.workers > 1 and options.config.worker is None:
                return make_supervisor(options.config, options.arguments)
            return makeService(
                options.config,
                options.load,
                handle_signals=True,
                twistd_options=options.parent,
                check_ports=True,
            )
        except ValueError as error:  # a bad setting, certificate or key
            raise SystemExit(f"chat: {error}") from error


service_maker = ChatServiceMaker()
