"""Same as ``lram bench training``: see :mod:`lram_agents.bench.training_speed`."""

from lram_agents.bench.training_speed import main

if __name__ == "__main__":
    main()
