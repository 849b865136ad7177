# One-command setup, tests and demo. Everything runs inside .venv, built from
# requirements.txt under the full lock in constraints.txt.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
# rclpy looks packages up through the ament index; in a venv the prefix is the venv.
export AMENT_PREFIX_PATH := $(abspath $(VENV))

.PHONY: setup test test-fast lint format lock demo preview bench clean

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt setup.py setup.cfg package.xml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3 setuptools==79.0.1
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $@

## The README's test command: lint, then every test (slow ones included).
test: setup lint
	$(BIN)/python -m pytest

## Skip the slow tests (colcon build) while iterating.
test-fast: setup lint
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Re-pin every dependency after editing requirements.txt.
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -E '^(rclpy|rcutils|rmw_dds_common|[a-z_]+_msgs|[a-z_]+_interfaces|rosidl_[a-z_]+|std_srvs)==' > constraints.new
	@echo "review constraints.new, then move it over constraints.txt (keep the pip/setuptools lines)"

## The README's main command: the 60 s demo bag (240x320, 10 Hz, faults of config/faults_demo.yaml
## baked in), played live against unimrseg_node, evaluated offline too, and demo_out/report.md
## (fault table, live vs offline mIoU, timeline, strip of frames). About 3 minutes on 2 cores.
DEMO := demo_out
demo: setup
	@echo "demo [1/4]: making the 60 s demo bag (240x320, 10 Hz, config/faults_demo.yaml) in $(DEMO)/bag"
	rm -rf $(DEMO)/bag $(DEMO)/live $(DEMO)/offline $(DEMO)/live_logs
	$(BIN)/unimrseg bag make --out $(DEMO)/bag --duration 60 --rate 10 --size 240x320 \
		--faults config/faults_demo.yaml --workers 2
	@echo "demo [2/4]: live: unimrseg_node + bag play (60 s of real time)"
	$(BIN)/unimrseg bag eval $(DEMO)/bag --live --json $(DEMO)/live.json --plots $(DEMO)/live \
		--logs $(DEMO)/live_logs
	@echo "demo [3/4]: offline evaluation of the same bag"
	$(BIN)/unimrseg bag eval $(DEMO)/bag --json $(DEMO)/offline.json --plots $(DEMO)/offline
	@echo "demo [4/4]: report"
	$(BIN)/python -m unimrseg_core.bags.report --bag $(DEMO)/bag --live $(DEMO)/live.json \
		--offline $(DEMO)/offline.json --samples $(DEMO)/live_logs/samples.npz --out $(DEMO)
	@echo "demo: open $(DEMO)/report.md (timeline $(DEMO)/live/timeline.png, frames $(DEMO)/strip.png)"

preview: setup
	$(BIN)/unimrseg data preview --out docs/contact_sheet.png

bench: setup
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_backends.py

clean:
	rm -rf $(VENV) build install log .pytest_cache .ruff_cache
