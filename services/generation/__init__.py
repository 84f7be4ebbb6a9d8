"""The generation service (`r1.generation.v1.Generation`, protos/r1/generation/v1/generation.proto)."""
