# infra.mk: the SAM build targets and the offline infrastructure checks.
#
# Included by the main Makefile (`-include infra.mk`), which defines VENV, SAM_VENV, BIN, APP_STAMP and SAM_STAMP.
# Standalone, with the venvs already there:   make -f infra.mk lint-infra APP_STAMP= SAM_STAMP=
#
# `sam build` (template.yaml: `Metadata: BuildMethod: makefile`, `CodeUri: .`) runs `make build-<LogicalId>` with
# ARTIFACTS_DIR set to that function's artifact directory. samconfig.toml and lint-infra pass `--manifest infra.mk`
# and `--build-in-source`, so the build reads this file directly and never copies .venv/.venv-sam to a scratch dir.
# Each function gets only its own requirements/<function>.txt.

PYTHON ?= python3.11
VENV ?= .venv
SAM_VENV ?= .venv-sam
BIN ?= $(VENV)/bin
APP_STAMP ?= $(VENV)/.installed
SAM_STAMP ?= $(SAM_VENV)/.installed

INFRA_REGION ?= us-east-1
SAM_BUILD_DIR ?= .aws-sam/build
TRANSLATED_TEMPLATE ?= .aws-sam/translated.json
# Nothing here calls AWS. Explicit fake credentials and region stop the SDK from searching for real ones (or the
# instance metadata service), and SAM CLI from sending telemetry.
INFRA_ENV := env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_DEFAULT_REGION=$(INFRA_REGION) AWS_REGION=$(INFRA_REGION) \
	AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0

# Wheels for the Lambda runtime rather than this machine: Linux arm64, CPython 3.11, manylinux2014 (glibc 2.17;
# the python3.11 runtime is Amazon Linux 2 with glibc 2.26). No .pyc: they are stripped below anyway.
LAMBDA_PIP ?= $(PYTHON) -m pip
LAMBDA_PIP_FLAGS := install --quiet --disable-pip-version-check --no-compile --no-warn-conflicts \
	--root-user-action=ignore --platform manylinux2014_aarch64 --only-binary=:all: --python-version 3.11 \
	--implementation cp
# Provided by the Lambda Python runtime; pulled in transitively (strands-agents, aws-xray-sdk), removed again.
RUNTIME_PROVIDED := boto3 botocore s3transfer
LAMBDA_SOURCES := domain adapters handlers

# The application's Python code (no tests, no caches) and the taxonomy it loads at start.
define copy_app_sources
	mkdir -p "$(ARTIFACTS_DIR)"
	find $(LAMBDA_SOURCES) -name '*.py' -not -path '*/__pycache__/*' -print | tar -cf - -T - | tar -xf - -C "$(ARTIFACTS_DIR)"
	cp domain/taxonomy.toml "$(ARTIFACTS_DIR)/domain/"
endef

# $(call pip_install_requirements,FILE): install FILE into the artifact unless it lists nothing.
define pip_install_requirements
	@if grep -qvE '^[[:space:]]*(#|$$)' $(1); then \
		echo "pip install -r $(1) -> $(ARTIFACTS_DIR) (wheels for the Lambda runtime)"; \
		$(LAMBDA_PIP) $(LAMBDA_PIP_FLAGS) --target "$(ARTIFACTS_DIR)" -r $(1); \
	else echo "$(1): no requirements"; fi
endef

# Safe to drop: console scripts, the runtime-provided SDK, bytecode caches, numpy's test suites, and the install
# bookkeeping pip alone reads (RECORD, INSTALLER...). METADATA and entry_points.txt stay: opentelemetry and
# importlib.metadata read them at run time.
define slim_artifact
	cd "$(ARTIFACTS_DIR)" && rm -rf bin $(RUNTIME_PROVIDED) $(foreach pkg,$(RUNTIME_PROVIDED),$(pkg)-*.dist-info)
	find "$(ARTIFACTS_DIR)" -depth -type d -name __pycache__ -exec rm -rf {} +
	find "$(ARTIFACTS_DIR)" -type f \( -name '*.pyc' -o -path '*.dist-info/RECORD' -o -path '*.dist-info/INSTALLER' \
		-o -path '*.dist-info/REQUESTED' -o -path '*.dist-info/direct_url.json' \) -delete
	if [ -d "$(ARTIFACTS_DIR)/numpy" ]; then find "$(ARTIFACTS_DIR)/numpy" -depth -type d -name tests -exec rm -rf {} +; fi
endef

.PHONY: build-IngestionFunction build-OrchestratorFunction build-TicketingUpdateFunction build-PreTrafficHookFunction \
	lint-infra sam-build artifact-sizes test-infra

build-IngestionFunction:
	$(copy_app_sources)
	$(call pip_install_requirements,requirements/ingestion.txt)
	$(slim_artifact)

build-OrchestratorFunction:
	@test -f adapters/classifier/default_model/metadata.json || \
		{ echo "adapters/classifier/default_model is missing: run 'make model' first" >&2; exit 1; }
	$(copy_app_sources)
	mkdir -p "$(ARTIFACTS_DIR)/adapters/classifier/default_model"
	cp adapters/classifier/default_model/* "$(ARTIFACTS_DIR)/adapters/classifier/default_model/"
	mkdir -p "$(ARTIFACTS_DIR)/adapters/classifier/static_vectors"
	cp adapters/classifier/static_vectors/*.npz "$(ARTIFACTS_DIR)/adapters/classifier/static_vectors/"
	$(call pip_install_requirements,requirements/orchestrator.txt)
	$(slim_artifact)

build-TicketingUpdateFunction:
	$(copy_app_sources)
	$(call pip_install_requirements,requirements/ticketing_update.txt)
	$(slim_artifact)

# The hook needs only itself (and boto3 from the runtime).
build-PreTrafficHookFunction:
	mkdir -p "$(ARTIFACTS_DIR)/handlers"
	cp handlers/__init__.py handlers/codedeploy_hook.py "$(ARTIFACTS_DIR)/handlers/"
	$(call pip_install_requirements,requirements/hook.txt)
	$(slim_artifact)

# sam build for arm64 without Docker: pip fetches aarch64 wheels, nothing is compiled here.
SAM_BUILD = $(INFRA_ENV) $(SAM_VENV)/bin/sam build --template-file template.yaml --build-dir $(SAM_BUILD_DIR) \
	--manifest infra.mk --build-in-source --parallel --region $(INFRA_REGION)
# Unzipped/zipped size per function, and the packaging rules (no strands/numpy outside the orchestrator...).
ARTIFACT_SIZES = $(BIN)/python scripts/artifact_sizes.py --build-dir $(SAM_BUILD_DIR)

sam-build: $(SAM_STAMP)
	$(SAM_BUILD)

artifact-sizes: $(APP_STAMP)
	$(ARTIFACT_SIZES)

# Everything that can be checked without an AWS account.
lint-infra: $(APP_STAMP) $(SAM_STAMP)
	$(INFRA_ENV) $(SAM_VENV)/bin/sam validate --lint --region $(INFRA_REGION) --template-file template.yaml
	$(BIN)/cfn-lint template.yaml
	$(BIN)/python scripts/translate_template.py --template template.yaml --output $(TRANSLATED_TEMPLATE) \
		--region $(INFRA_REGION) --lint
	$(SAM_BUILD)
	$(ARTIFACT_SIZES)

# The infrastructure tests alone (`make test` runs them with everything else).
test-infra: $(APP_STAMP)
	$(BIN)/pytest -q -p no:cacheprovider tests/infra tests/unit/test_codedeploy_hook.py
