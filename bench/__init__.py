"""`make bench`: how fast the running pipeline prices listings (bench.pipeline)."""
