"""Test helpers: event-log generator and injector, an independent oracle, a stream runner."""
