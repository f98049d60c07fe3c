"""stylebridge.server: the ZeroMQ server, its protocol, the numpy client and the command line."""
