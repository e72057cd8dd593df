"""Code every ModelCI-e service shares: settings, Avro serde, Kafka helpers, logging, metrics.

One copy lives here so that services differ only in what they do, not in how they talk."""
