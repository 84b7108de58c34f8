# Nebula — the two commands a newcomer needs: `make test` and `make demo`.
SWIFT ?= swift
DATA ?= ../shared/data
DEMO_DIR ?= .build/demo

.PHONY: deps build test demo bench compare

# Installs the system libraries Nebula links against (Debian/Ubuntu), when missing.
deps:
	@if [ "$$(uname)" = "Linux" ] && ! pkg-config --exists openblas 2>/dev/null; then \
		echo "installing libopenblas-dev and pkg-config"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libopenblas-dev pkg-config; \
	fi

build: deps
	$(SWIFT) build -c release

# The suite runs in release mode: numeric code is 10-50x slower in debug builds.
test: deps
	$(SWIFT) test -c release -Xswiftc -enable-testing

# Trains nanoGPT's CPU configuration on tinyshakespeare for a few hundred steps, evaluates it and samples.
demo: build
	.build/release/nebula train lm --data $(DATA)/shakespeare/input.txt --char --split tail --val-fraction 0.1 \
		--preset mini --steps 300 --warmup 30 --eval-every 100 --out $(DEMO_DIR)/shakespeare
	.build/release/nebula eval lm --model $(DEMO_DIR)/shakespeare --prompt-count 100
	.build/release/nebula sample --model $(DEMO_DIR)/shakespeare --prompt "ROMEO:" --max-tokens 300 --seed 1

bench: deps
	$(SWIFT) run -c release nebula-bench engine
	$(SWIFT) run -c release nebula-bench gpt --config small

# Nebula against PyTorch on the same GPT (needs python3 with torch).
compare: deps
	bench/compare_pytorch.sh
