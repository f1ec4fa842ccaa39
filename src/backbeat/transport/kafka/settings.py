"""Typed Kafka client settings: flags > ``BACKBEAT_KAFKA_*`` environment > defaults.

:class:`KafkaSettings` holds what every client (admin, producer, consumer) needs to reach a
cluster: bootstrap servers, client id, security (SASL / SSL) and a pass-through of any other
librdkafka key. Secrets are :class:`~pydantic.SecretStr`: masked in ``repr``, logs and
``--json`` output, revealed only by :meth:`KafkaSettings.to_librdkafka`. ``topic_prefix`` maps
backbeat's topic names to the cluster's (``<prefix>listen_events``), so several deployments or
tests can share one cluster.

Next: ``admin.py``, ``producer.py``, ``source.py`` (the clients built from these settings).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from backbeat.errors import MissingExtraError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"]

DLQ_SUFFIX = ".dlq"


class KafkaSettings(BaseSettings):
    """How to reach a Kafka cluster.

    Attributes:
        bootstrap_servers: ``host:port[,host:port...]``.
        client_id: reported to the brokers (quotas, logs).
        topic_prefix: prepended to backbeat's topic names on the cluster.
        security_protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
        sasl_mechanism, sasl_username, sasl_password: SASL credentials (password secret).
        ssl_ca_location, ssl_certificate_location, ssl_key_location: PEM files.
        ssl_key_password: password of the private key (secret).
        extra: any other librdkafka key, passed through as is (wins over the fields above).
        request_timeout_s: how long admin calls and metadata look-ups wait for the cluster.
    """

    model_config = SettingsConfigDict(env_prefix="BACKBEAT_KAFKA_", extra="ignore")

    bootstrap_servers: str = "localhost:9092"
    client_id: str = "backbeat"
    topic_prefix: str = ""
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretStr | None = None
    extra: dict[str, str] = Field(default_factory=dict)
    request_timeout_s: float = Field(default=15.0, gt=0)

    def topic(self, name: str) -> str:
        """The cluster's name for backbeat topic ``name``."""
        return self.topic_prefix + name

    def backbeat_topic(self, kafka_topic: str) -> str:
        """backbeat's name for a cluster topic (the prefix removed when present)."""
        return kafka_topic.removeprefix(self.topic_prefix) if self.topic_prefix else kafka_topic

    def to_librdkafka(self) -> dict[str, str]:
        """The librdkafka configuration (secrets revealed: never log the result)."""
        conf = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol,
        }
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password.get_secret_value() if self.sasl_password else None,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
            "ssl.key.password": (
                self.ssl_key_password.get_secret_value() if self.ssl_key_password else None
            ),
        }
        conf.update({k: str(v) for k, v in optional.items() if v is not None})
        conf.update(self.extra)
        return conf


def require_client() -> None:
    """Fail with a clear "install backbeat[kafka]" error when confluent-kafka is missing.

    Raises:
        MissingExtraError: ``confluent_kafka`` cannot be imported.
    """
    try:
        import_module("confluent_kafka")
    except ImportError:
        raise MissingExtraError("talking to Kafka", "kafka") from None
