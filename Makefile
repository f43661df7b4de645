# Two commands a new user needs:  `make demo`  and  `make test`.
# Both create the virtual environment (.venv) and install everything on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test clean-venv

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel first: an unpinned torch would download a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[test,vizdoom,minari,domains]"
	# Procgen (envpool) needs the Qt 5 GUI library; without it the Procgen tests skip and say so.
	dpkg -s libqt5gui5 >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq --no-install-recommends libqt5gui5) \
		|| echo "warning: could not install libqt5gui5 (apt-get install libqt5gui5): the Procgen domain will not run"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m lram_agents.demo
	$(PY) -m lram_agents.demo --generalist

test: $(STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
