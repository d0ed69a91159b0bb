"""CLI command groups by area; kit/cli.py registers them. Each module defines click commands and `COMMANDS`."""
