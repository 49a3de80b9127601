"""The settings every program shares, read from the environment and `.env`.

The names are the ones in `.env.example`; compose passes the same names, so one `.env`
drives both the local stack and the Docker path. The bottom layer: it imports no project
package, and neither SQLAlchemy nor psycopg until a connection string is asked for, so the
transformer (which needs neither) does not load them.
"""

from __future__ import annotations

import json
import os
import pwd
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

REPO_ROOT = Path(__file__).resolve().parent.parent


class _FromEnv(BaseSettings):
    model_config = SettingsConfigDict(env_file=REPO_ROOT / ".env", extra="ignore")


def as_env(*settings: BaseSettings) -> dict[str, str]:
    """Settings under their env names, for the programs the stack starts (a dict as JSON,
    which pydantic-settings reads back)."""
    dumped = [
        (name, value) for one in settings for name, value in one.model_dump(mode="json").items()
    ]
    return {name.upper(): v if isinstance(v, str) else json.dumps(v) for name, v in dumped}


class PostgresSettings(_FromEnv):
    """Connection facts for `car_database` and the roles that use it."""

    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_database: str = "car_database"
    pg_superuser: str = "postgres"
    pg_superuser_password: str
    app_db_user: str = "car_app"
    app_db_password: str
    cdc_db_user: str = "car_cdc"
    cdc_db_password: str
    sink_db_user: str = "car_sink"
    sink_db_password: str
    # postgres_exporter: pg_monitor + SELECT on the columns its queries read (migration 0007)
    monitoring_db_user: str = "car_monitor"
    monitoring_db_password: str

    def url(
        self, user: str | None = None, password: str | None = None, database: str | None = None
    ) -> URL:
        """SQLAlchemy URL (psycopg 3); defaults to the superuser on car_database.

        A URL object, not a string: SQLAlchemy escapes each part itself, so a password
        holding `@ : / % # ?` cannot change where or as whom we connect.
        """
        from sqlalchemy.engine import URL

        return URL.create(
            "postgresql+psycopg",
            username=user or self.pg_superuser,
            password=password if password is not None else self.pg_superuser_password,
            host=self.pg_host,
            port=self.pg_port,
            database=database or self.pg_database,
        )

    def dsn(
        self, user: str | None = None, password: str | None = None, database: str | None = None
    ) -> str:
        """libpq key=value string for psycopg.connect(), every value quoted by libpq's rules."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.pg_host,
            port=self.pg_port,
            dbname=database or self.pg_database,
            user=user or self.pg_superuser,
            password=password if password is not None else self.pg_superuser_password,
        )


class KafkaSettings(_FromEnv):
    """The broker and the pipeline's topics: read by the stack, the transformer and tests."""

    kafka_host: str = "127.0.0.1"
    kafka_port: int = Field(9092, ge=1, le=65535)
    cdc_topic: str = "car_database.public.tbl_car_price"
    predictions_topic: str = "car_price_predictions"
    dlq_topic: str = "car_price_predictions.dlq"
    # the JDBC sink's dead letters (Connect's format); must match
    # errors.deadletterqueue.topic.name in connectors/car-price-predictions-sink.json
    sink_dlq_topic: str = "car_price_predictions.sink.dlq"
    # largest record: every topic's max.message.bytes and Connect's producer
    # max.request.size; a listing the table accepts is a few KB (model.listing_rules)
    kafka_max_message_bytes: int = 1_048_576

    # an external cluster: its bootstrap list ("b1:9092,b2:9092") replaces KAFKA_HOST:PORT
    # for every client (transformer, Connect worker, stack tools); empty = the local broker
    kafka_bootstrap_servers: str = ""

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap_servers or f"{self.kafka_host}:{self.kafka_port}"


SCRAM = "SCRAM-SHA-512"


class KafkaPrincipals(_FromEnv):
    """Who may use Kafka (SASL, authorised by ACLs: stack/kafka.py ensure_principals).
    Not part of KafkaSettings, which the transformer inherits: each program gets its own
    credentials only (stack/environments.py)."""

    # SASL_PLAINTEXT on the local broker (loopback); SASL_SSL on an external cluster
    kafka_security_protocol: str = "SASL_PLAINTEXT"
    # the super user of the make targets and the tests: PLAIN, defined in the broker's own
    # (0600) properties, so it exists before any SCRAM credential does
    kafka_admin_user: str = "car-admin"
    kafka_admin_password: str
    kafka_admin_sasl_mechanism: str = "PLAIN"
    # the programs: SCRAM-SHA-512 credentials `make up` creates as the admin
    kafka_connect_user: str = "car-connect"
    kafka_connect_password: str
    kafka_transformer_user: str = "car-transformer"
    kafka_transformer_password: str

    def sasl(self, user: str, password: str, mechanism: str = SCRAM) -> dict[str, str]:
        """librdkafka properties of a client authenticating as `user`."""
        return {
            "security.protocol": self.kafka_security_protocol,
            "sasl.mechanism": mechanism,
            "sasl.username": user,
            "sasl.password": password,
        }

    def admin(self) -> dict[str, str]:
        return self.sasl(
            self.kafka_admin_user, self.kafka_admin_password, self.kafka_admin_sasl_mechanism
        )


class KafkaServerSettings(KafkaSettings):
    """What only the local brokers need besides the client view (the stack's tools see the
    whole bootstrap list through it; the transformer gets that list from the stack)."""

    kafka_controller_port: int = 9093
    # 1: one combined broker+controller (small machines); 3: a KRaft cluster of three
    # combined nodes, every one a voter (docs/cluster.md). Fixed for a `.state`: changing
    # it needs a fresh stack (stack/kafka.py check_broker_count).
    kafka_brokers: int = 1
    # broker n (n > 1) listens on KAFKA_PORT + step*(n-1), its controller on
    # KAFKA_CONTROLLER_PORT + step*(n-1) and its JMX exporter on KAFKA_JMX_PORT + step*(n-1)
    kafka_broker_port_step: int = Field(10, ge=3, le=1000)
    # copies of each pipeline topic (and Connect's, and Kafka's own internal topics): by
    # default as many as there are local brokers; 3 on an external cluster
    # (KAFKA_BOOTSTRAP_SERVERS), where KAFKA_BROKERS says nothing
    kafka_replication_factor: int | None = Field(None, ge=1)
    # how many of those copies must have a write before it is acknowledged (acks=all):
    # by default a majority (RF 3 -> 2, RF 1 -> 1)
    kafka_min_insync_replicas: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.kafka_brokers not in (1, 3):
            raise ValueError("KAFKA_BROKERS is 1 (one broker) or 3 (a cluster)")
        if self.replication_factor < self.min_insync_replicas:
            raise ValueError("KAFKA_MIN_INSYNC_REPLICAS cannot exceed the replication factor")
        if not self.kafka_bootstrap_servers and self.replication_factor > self.kafka_brokers:
            raise ValueError(
                f"KAFKA_REPLICATION_FACTOR={self.replication_factor} needs as many brokers "
                f"(KAFKA_BROKERS={self.kafka_brokers})"
            )
        return self

    @property
    def brokers(self) -> range:
        """The local brokers' node ids: 1 .. KAFKA_BROKERS."""
        return range(1, self.kafka_brokers + 1)

    def broker_port(self, node: int) -> int:
        return self.kafka_port + self.kafka_broker_port_step * (node - 1)

    def controller_port(self, node: int) -> int:
        return self.kafka_controller_port + self.kafka_broker_port_step * (node - 1)

    def broker_address(self, node: int) -> str:
        return f"{self.kafka_host}:{self.broker_port(node)}"

    @property
    def bootstrap_servers(self) -> str:
        """Every local broker, so a client starts (and restarts) whichever one is down."""
        return self.kafka_bootstrap_servers or ",".join(map(self.broker_address, self.brokers))

    @property
    def replication_factor(self) -> int:
        return self.kafka_replication_factor or self.kafka_brokers

    @property
    def min_insync_replicas(self) -> int:
        return self.kafka_min_insync_replicas or self.replication_factor // 2 + 1


class ConnectSettings(_FromEnv):
    # CONNECT_<PROPERTY> fills `connect` (pydantic-settings' nesting): worker properties
    model_config = SettingsConfigDict(env_nested_delimiter="_", env_nested_max_split=1)

    connect_host: str = "127.0.0.1"
    connect_port: int = 8083
    connect: dict[str, str] = {}
    # Connect's REST API asks every request for these (HTTP Basic; docs/security.md):
    # make deploy-connectors, make status, the watchdog, readiness and the tests send them
    connect_rest_user: str = "car-operator"
    connect_rest_password: str

    @property
    def url(self) -> str:
        return f"http://{self.connect_host}:{self.connect_port}"

    @property
    def rest_auth(self) -> tuple[str, str]:
        """httpx's `auth=` for the REST API (Basic)."""
        return (self.connect_rest_user, self.connect_rest_password)


class BentoMLSettings(_FromEnv):
    """Where the price service listens: BentoML binds it, the transformer calls it."""

    bentoml_host: str = "127.0.0.1"
    bentoml_port: int = Field(3000, ge=1, le=65535)

    @property
    def bentoml_url(self) -> str:
        return f"http://{self.bentoml_host}:{self.bentoml_port}"


class TransformerMetricsSettings(_FromEnv):
    """Where the transformer serves /metrics (port 0: any free port, which it logs)."""

    transformer_metrics_host: str = "127.0.0.1"
    transformer_metrics_port: int = Field(9400, ge=0, le=65535)

    @property
    def transformer_metrics_url(self) -> str:
        return f"http://{self.transformer_metrics_host}:{self.transformer_metrics_port}/metrics"


class ServiceSettings(BentoMLSettings, TransformerMetricsSettings):
    """Where the Python services of the pipeline listen (BentoML, transformer, Adminer)."""

    adminer_host: str = "127.0.0.1"
    adminer_port: int = 8080

    @property
    def adminer_url(self) -> str:
        return f"http://{self.adminer_host}:{self.adminer_port}/adminer/"


class MonitoringSettings(_FromEnv):
    """Prometheus and the exporters (monitoring/): each binds MONITORING_HOST. Connect
    worker n serves its JMX exporter on CONNECT_JMX_PORT + n - 1."""

    monitoring_host: str = "127.0.0.1"
    prometheus_port: int = Field(9090, ge=1, le=65535)
    kafka_jmx_port: int = Field(9094, ge=1, le=65535)
    connect_jmx_port: int = Field(9095, ge=1, le=65535)
    postgres_exporter_port: int = Field(9187, ge=1, le=65535)
    # short intervals: an alert fires within a minute of its fault on the local stack
    prometheus_scrape_interval: str = "5s"
    prometheus_retention: str = "2d"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.monitoring_host}:{self.prometheus_port}"


class StackSettings(_FromEnv):
    """Where the local stack keeps its state and which OS user runs Postgres."""

    state_dir: Path = REPO_ROOT / ".state"
    jvm_dir: Path = REPO_ROOT / ".cache" / "jvm"
    ford_csv: Path = REPO_ROOT.parent / "shared" / "data" / "ford.csv"
    # Postgres refuses to run as root: as root we run it as this unprivileged user.
    pg_os_user: str = "postgres"
    # Adminer needs no privilege at all: as root it runs as this user.
    adminer_os_user: str = "www-data"
    # Fixed heaps (Xms = Xmx: no resizing); the GC is in stack/supervisord.conf. Together
    # they keep the whole stack under 2.5 GB (README "Performance knobs").
    kafka_heap_opts: str = "-Xms512m -Xmx512m"
    connect_heap_opts: str = "-Xms512m -Xmx512m"
    # Scale-out on the distributed parts: transformers in one consumer group, Connect
    # workers in one Connect cluster. Instance n > 1 is the program `<name>-n`, with the
    # port CONNECT_PORT + n - 1 (REST) or TRANSFORMER_METRICS_PORT + n - 1 (/metrics).
    transformer_instances: int = Field(1, ge=1, le=8)
    connect_workers: int = Field(1, ge=1, le=4)
    bentoml_home: Path = REPO_ROOT / ".state" / "bentoml"  # the model store (as in the Makefile)

    @cached_property
    def postgres(self) -> PostgresSettings:
        return PostgresSettings()

    @cached_property
    def kafka(self) -> KafkaServerSettings:
        return KafkaServerSettings()

    @cached_property
    def kafka_principals(self) -> KafkaPrincipals:
        return KafkaPrincipals()

    def kafka_admin(self, **extra: object) -> dict[str, object]:
        """librdkafka config of an admin client (make targets, status, tests): the
        broker, the admin's credentials, and `extra` ("group.id", ...)."""
        return {"bootstrap.servers": self.kafka.bootstrap_servers} | (
            self.kafka_principals.admin() | extra
        )

    @cached_property
    def connect(self) -> ConnectSettings:
        return ConnectSettings()

    @cached_property
    def services(self) -> ServiceSettings:
        return ServiceSettings()

    @cached_property
    def monitoring(self) -> MonitoringSettings:
        return MonitoringSettings()

    @property
    def ford_csv_path(self) -> Path:
        """FORD_CSV; a relative path is relative to the repository root."""
        return self.ford_csv if self.ford_csv.is_absolute() else REPO_ROOT / self.ford_csv

    @property
    def server_os_user(self) -> str:
        """The OS user that owns Postgres' files: ourselves unless we are root."""
        if os.geteuid() == 0:
            return self.pg_os_user
        return pwd.getpwuid(os.geteuid()).pw_name

    @property
    def adminer_run_user(self) -> str:
        """The OS user Adminer runs as: ADMINER_OS_USER when we are root, else ourselves."""
        if os.geteuid() == 0:
            return self.adminer_os_user
        return pwd.getpwuid(os.geteuid()).pw_name

    @property
    def adminer_dir(self) -> Path:
        """Adminer's sessions and router, resolved like pg_dir (a link when needed)."""
        return (self.state_dir / "adminer").resolve()

    @property
    def env_dir(self) -> Path:
        """Each launched program's environment (stack/environments.py), mode 0700."""
        return self.state_dir / "env"

    @property
    def secrets_dir(self) -> Path:
        """The one folder Connect's FileConfigProvider may read (`${file:...}`)."""
        return self.state_dir / "secrets"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pg_dir(self) -> Path:
        """`.state/postgres`, resolved: it is a link when the clone sits in a folder the
        server user cannot enter (see stack.postgres.prepare_pg_dir)."""
        return (self.state_dir / "postgres").resolve()

    @property
    def pg_data_dir(self) -> Path:
        return self.pg_dir / "data"

    @property
    def pg_run_dir(self) -> Path:
        return self.pg_dir / "run"

    @property
    def kafka_data_dir(self) -> Path:
        """Broker 1's log directory (the single broker's)."""
        return self.state_dir / "kafka" / "data"

    def broker_data_dir(self, node: int) -> Path:
        """Broker n's own log directory: `.state/kafka/data`, `.state/kafka-2/data`, ..."""
        return self.kafka_data_dir if node == 1 else self.state_dir / f"kafka-{node}" / "data"

    def kafka_jmx_port(self, node: int) -> int:
        """Broker n's JMX exporter: KAFKA_JMX_PORT + KAFKA_BROKER_PORT_STEP * (n - 1)."""
        step = self.kafka.kafka_broker_port_step
        return self.monitoring.kafka_jmx_port + step * (node - 1)

    @property
    def conf_dir(self) -> Path:
        return self.state_dir / "conf"

    @property
    def admin_client_properties(self) -> Path:
        """The admin's Java client settings (make watch), rendered 0600."""
        return self.conf_dir / "admin-client.properties"

    @property
    def supervisor_conf(self) -> Path:
        return REPO_ROOT / "stack" / "supervisord.conf"

    @property
    def scale_out_conf(self) -> Path:
        """The supervisord sections of the extra instances (stack/render.py)."""
        return self.conf_dir / "scale-out.conf"
