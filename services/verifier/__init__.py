"""The verifier service (`r1.verifier.v1.Verifier`, protos/r1/verifier/v1/verifier.proto)."""
