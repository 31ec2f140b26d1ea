"""`python -m broker [serve] [flags]`: run a node, as `runnel serve` does."""
import sys

from .cli import main, serve_main

if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(args) if args and not args[0].startswith("-") else serve_main(args))
