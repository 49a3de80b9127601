"""Kafka transformer: Debezium CDC events for tbl_car_price -> BentoML /predict ->
prediction records for the JDBC sink (`python -m transformer`). The flow reads off the
modules: events -> batch -> predictor -> records -> pipeline -> service."""
