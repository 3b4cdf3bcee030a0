# One command each for the main job and the tests; both do their own set-up.
PY      := .venv/bin/python
FMNIST  := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
STAMP   := .venv/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint data browser speech synth setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,prompts,music]'
	@rm -f .venv/.installed-*; touch $@

# Fashion-MNIST comes from Debian's package; without root or apt this warns and goes on.
data:
	@test -f $(FMNIST) || { (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
	  || echo "warning: could not install dataset-fashion-mnist; set AIGC_DATA to a folder with the idx files"; }

# The service's page is tested in Debian's headless Chromium (Playwright drives it; no browser download).
browser:
	@test -x /usr/bin/chromium || { (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
	  || echo "warning: could not install chromium; the browser tests of aigc serve will be skipped"; }

# spoken-digits (the audio modality's built-in data) is synthesized by Debian's espeak-ng.
speech:
	@command -v espeak-ng >/dev/null || { (apt-get update -qq && apt-get install -y -qq espeak-ng) >/dev/null 2>&1 \
	  || echo "warning: could not install espeak-ng; the spoken-digits data and its tests will be unavailable"; }

# music's WAVs are played by Debian's FluidSynth with its General MIDI SoundFont; without them aigc
# falls back to its own additive synthesizer (and the tests of the FluidSynth path are skipped).
synth:
	@command -v fluidsynth >/dev/null && test -f /usr/share/sounds/sf2/FluidR3_GM.sf2 || \
	  { (apt-get update -qq && apt-get install -y -qq fluidsynth fluid-soundfont-gm) >/dev/null 2>&1 \
	  || echo "warning: could not install fluidsynth/fluid-soundfont-gm; music is rendered by aigc's own synthesizer"; }

demo: setup data
	$(PY) -m aigc train fashion-dcgan --out runs/demo
	@echo "Look at: runs/demo/samples.png, runs/demo/curves.png, runs/demo/report.md"

test: setup data browser speech synth
	$(PY) -m pytest -q -x --durations=15

lint: setup
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf runs .aigc-cache
