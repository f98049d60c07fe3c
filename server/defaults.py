"""``stylebridge serve``'s timings, defined once for the command line, the server and the worker.
No torch, no sockets: the CLI imports it to print its help."""

# seconds without a job before the model is freed (0 on the command line: never)
IDLE_UNLOAD = 600.0
DRAIN_SECONDS = 60.0  # on stop, queued and running jobs get this long to finish
