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

## The README's main command. Today (parts 1-2): a 40-scene dataset, the contact sheet of
## the procedural world and a quick evaluation of the shipped model, under demo_out/.
## Later parts grow it into the live ROS demo.
demo: setup
	rm -rf demo_out/world
	$(BIN)/unimrseg data generate --out demo_out/world --n 40 --seed 7 --size 240x320 --workers 2
	$(BIN)/unimrseg data preview --out demo_out/contact_sheet.png --seed 0
	$(BIN)/unimrseg eval --scenes 14 --no-protocols --quiet --json demo_out/eval.json --plots demo_out/eval
	@echo "demo: scenes in demo_out/world, contact sheet in demo_out/contact_sheet.png, shipped model scored in demo_out/eval.json and demo_out/eval/"

preview: setup
	$(BIN)/unimrseg data preview --out docs/contact_sheet.png

bench: setup
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_backends.py

clean:
	rm -rf $(VENV) build install log .pytest_cache .ruff_cache
