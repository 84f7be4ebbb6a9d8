"""Settings for the whole suite."""

import os

# The sandbox forks (then execs at once) while gRPC threads run in the same test process; gRPC's fork
# handlers would only log "skipping fork() handlers" each time. Read when grpc is first imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
