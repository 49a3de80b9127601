"""Kafka transformer: Debezium CDC events for tbl_car_price -> BentoML /predict ->
prediction records for the JDBC sink. Run it with `python -m transformer`.

The flow reads off the module names: events -> batch -> predictor -> records ->
pipeline -> service (plus settings and metrics)."""
