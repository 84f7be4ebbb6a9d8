"""The exporter service (`r1.exporter.v1.Exporter`, protos/r1/exporter/v1/exporter.proto)."""
