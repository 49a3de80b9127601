"""`make demo` (`python -m operations.demo`): insert a few realistic listings and show their
prices as they arrive.

It connects as the app role (what a person or Adminer uses), so it also shows that
role is enough to list a car and read the recommendation.
"""

from __future__ import annotations

import psycopg

from config.settings import StackSettings
from config.waiting import WaitTimeout, wait_until

LISTINGS = [
    ("Fiesta", 2017, 8995, "Manual", 31000, "Petrol", 145, 65.7, 1.0),
    ("Focus", 2019, 14250, "Manual", 12500, "Petrol", 145, 60.1, 1.0),
    ("Kuga", 2018, 16990, "Automatic", 28000, "Diesel", 145, 54.3, 2.0),
    ("EcoSport", 2020, 13500, "Manual", 9000, "Petrol", 150, 49.6, 1.0),
    ("Mustang", 2017, 28500, "Automatic", 21000, "Petrol", 580, 23.5, 5.0),
    ("Fiesta", 2019, None, "Automatic", 15000, "Petrol", 145, 52.3, 1.0),
]
COLUMNS = "model, year, price, transmission, mileage, fuel_type, tax, mpg, engine_size"


def run(settings: StackSettings, timeout: float = 30) -> int:
    pg = settings.postgres
    with psycopg.connect(
        pg.dsn(user=pg.app_db_user, password=pg.app_db_password), autocommit=True
    ) as conn:
        ids = [
            conn.execute(
                f"INSERT INTO tbl_car_price ({COLUMNS}) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                listing,
            ).fetchone()[0]
            for listing in LISTINGS
        ]
        print(f"inserted {len(ids)} listings (ids {ids[0]}..{ids[-1]}); waiting for prices…")
        try:
            rows = wait_until(
                lambda: conn.execute(
                    "SELECT id, model, year, mileage, fuel_type, asking_price, predicted_price, "
                    "price_low, price_high, verdict, latency FROM v_car_price_recommendation "
                    "WHERE id = ANY(%s) ORDER BY id",
                    (ids,),
                ).fetchall(),
                lambda rows: all(row[6] is not None for row in rows),
                timeout=timeout,
                interval=0.5,
                message=lambda _: "",  # the rows say which listings have no price
            )
        except WaitTimeout as exc:
            rows = exc.last
    header = (
        f"{'id':>6} {'model':<9} {'year':>4} {'mileage':>7} {'fuel':<7} {'asking':>7} "
        f"{'predicted':>9} {'80% range':>15}  {'verdict':<15} latency"
    )
    print(header + "\n" + "-" * len(header))
    for car_id, model, year, mileage, fuel, asking, predicted, low, high, verdict, latency in rows:
        span = f"{low:.0f}-{high:.0f}" if low is not None else "-"
        print(
            f"{car_id:>6} {model:<9} {year:>4} {mileage:>7} {fuel:<7} "
            f"{asking if asking is not None else '-':>7} "
            f"{predicted if predicted is not None else 'pending':>9} {span:>15}  "
            f"{verdict:<15} {latency.total_seconds() if latency else '-'}"
        )
    missing = [row[0] for row in rows if row[6] is None]
    if missing:
        print(f"no price after {timeout:.0f}s for {missing}: see `make status` and `make logs`")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run(StackSettings()))
