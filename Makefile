# Two commands do all the set-up on a fresh clone: `make run` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-ocr clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# CPU build of torch first: bertopic -> sentence-transformers -> torch would
	# otherwise pull a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/mgz run --corpus corpus --out outputs

test: $(STAMP)
	$(VENV)/bin/ruff check pipeline flows tests bench
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/extract_speed.py

# OCR of scanned PDFs needs system packages (not installable by pip):
#   Debian/Ubuntu: sudo apt-get install tesseract-ocr tesseract-ocr-nld ghostscript unpaper
#   macOS:         brew install tesseract tesseract-lang ghostscript unpaper
bench-ocr: $(STAMP)
	$(PY) bench/ocr_quality.py --dpi 200,300 --workers 2

clean:
	rm -rf outputs
