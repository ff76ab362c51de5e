"""Session events for the app's own backend: the documented envelope (docs/events.md), the relay
from the internal session-events topic to the app's topic, and signed webhooks to configured URLs."""
