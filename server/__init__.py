"""stylebridge.server: the command line, and (later) the ZeroMQ server and its clients."""
