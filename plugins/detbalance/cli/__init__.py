"""Command lines that sit above the framework adapters (they may reach either framework's bridge on request)."""
