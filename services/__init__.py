"""Thin gRPC adapters over the `r1` library: one folder per service, plus `common/` (the shared bootstrap).

A service folder holds its servicer (validate, convert, one library call, convert back), its `convert.py`
between wire messages and library types, and its `build()` that hands the bootstrap what to serve.
Services never import each other except through a service's `client` module. The generated stubs live in
`services/protogen/` (built by `make protos`, never committed).
"""
