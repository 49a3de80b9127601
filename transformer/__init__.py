"""CDC events -> BentoML -> prediction records: events, batch, predictor, records, pipeline."""
