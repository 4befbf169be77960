"""chat-server: an IRC server and terminal client on Twisted."""
