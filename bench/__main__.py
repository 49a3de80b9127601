"""`python -m bench`: the pipeline benchmark (bench/pipeline.py)."""

from bench.pipeline import main

raise SystemExit(main())
