"""CDC events -> BentoML -> prediction records. The modules in the order a message meets them:
events, batch, bentoml_client, records, pipeline; service runs the loop (settings, metrics)."""
