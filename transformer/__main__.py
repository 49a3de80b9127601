"""`python -m transformer`: run the CDC -> BentoML -> predictions transformer."""

from transformer.service import run

raise SystemExit(run())
