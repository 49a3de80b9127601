"""`python -m transformer`: run the CDC -> BentoML -> predictions transformer."""

import sys

from transformer.service import run

if __name__ == "__main__":
    sys.exit(run())
