"""The model zoo: ``manifest.json`` lists every model (see :mod:`lram_agents.registry` for its format),
and small trained models live in folders beside it (``<name>/config.json``, ``model.safetensors``,
``preprocessing.json``, ``README.md``)."""
