"""Car price model: training (`python -m model.train`), serving (`model.service`) and a
benchmark (`python -m model.bench`).

Modules: data (load + validate the CSV, the fixed split), features (listing -> model
frame), fitting (XGBoost boosters + range calibration), predictor (the saved model),
report (metrics, plots), store (BentoML model store), api_schema (request validation),
listing_rules (what a valid listing is, shared with the table's CHECK constraints).
"""
