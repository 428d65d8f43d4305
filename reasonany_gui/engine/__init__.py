"""The engine: pure Python + torch. Never imports Qt (a test enforces it)."""
