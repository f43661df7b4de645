"""The benchmarks behind ``lram bench``: acting latency (:mod:`~lram_agents.bench.latency`, on
:mod:`lram_agents.benchmark`) and training speed against the Transformer
(:mod:`~lram_agents.bench.training_speed`). ``benchmarks/*.py`` run the same code as scripts."""
