"""Same as ``lram bench latency``: see :mod:`lram_agents.bench.latency`."""

from lram_agents.bench.latency import main

if __name__ == "__main__":
    main()
