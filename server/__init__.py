"""livestream-compliance server side: websocket sidecar, metrics, audit log, Redis workers."""
