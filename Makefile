# Nebula — the two commands a newcomer needs: `make test` and `make demo`.
SWIFT ?= swift
DATA ?= ../shared/data
DEMO_DIR ?= .build/demo

BUNDLE ?= models/tinystories
RUNS ?= runs/tinystories
NEBULA = .build/release/nebula

.PHONY: deps build test demo bench compare bundle shakespeare

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
	$(NEBULA) train lm --data $(DATA)/shakespeare/input.txt --char --split tail --val-fraction 0.1 \
		--preset mini --steps 300 --warmup 30 --eval-every 100 --out $(DEMO_DIR)/shakespeare
	$(NEBULA) eval lm --model $(DEMO_DIR)/shakespeare --prompt-count 100
	$(NEBULA) sample --model $(DEMO_DIR)/shakespeare --prompt "ROMEO:" --max-tokens 300 --seed 1

# Trains every stage of the TinyStories bundle from scratch, then exports it (work in progress: the
# autoencoder does not yet learn to use its latent at this scale; see the README).
bundle: build
	$(NEBULA) tokenizer train --data $(DATA)/tinystories --vocab-size 4096 --out $(RUNS)/tokenizer
	$(NEBULA) train lm --data $(DATA)/tinystories --tokenizer $(RUNS)/tokenizer --preset small --batch-size 16 \
		--steps 3000 --warmup 100 --lr 1e-3 --min-lr 1e-4 --eval-every 250 --out $(RUNS)/lm
	$(NEBULA) train autoencoder --lm $(RUNS)/lm --latents 16 --latent-width 64 --batch-size 32 --steps 1500 \
		--lr 1e-3 --min-lr 1e-4 --warmup 100 --eval-every 250 --eval-batches 8 --out $(RUNS)/autoencoder
	$(NEBULA) train diffusion --autoencoder $(RUNS)/autoencoder --steps 1500 --out $(RUNS)/diffusion
	for stage in lm autoencoder diffusion; do $(NEBULA) export --from $(RUNS)/$$stage --to $(BUNDLE)/$$stage; done

# nanoGPT's CPU configuration on tinyshakespeare characters (the reference run of the README).
shakespeare: build
	$(NEBULA) train lm --data $(DATA)/shakespeare/input.txt --char --split tail --val-fraction 0.1 \
		--preset mini --steps 2000 --out $(DEMO_DIR)/shakespeare
	$(NEBULA) eval lm --model $(DEMO_DIR)/shakespeare

bench: deps
	$(SWIFT) run -c release nebula-bench engine
	$(SWIFT) run -c release nebula-bench gpt --config small

# Nebula against PyTorch on the same GPT (needs python3 with torch).
compare: deps
	bench/compare_pytorch.sh
