"""Kafka transformer: Debezium CDC events for tbl_car_price -> BentoML /predict ->
prediction records for the JDBC sink. Run it with `python -m transformer`."""
