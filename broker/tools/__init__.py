"""Command-line tools on top of broker/client: `runnel pub|sub|bench|status`.
Each module has ``main(argv: list[str]) -> int``; broker/cli.py dispatches."""
