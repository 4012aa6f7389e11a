"""The live server: ``simulinterp serve`` (WebSocket protocol in ``docs/protocol.md``)."""
