# Nebula — the two commands a newcomer needs: `make test` and `make demo`.
SWIFT ?= swift
RELEASE_TEST = $(SWIFT) test -c release -Xswiftc -enable-testing

.PHONY: deps test demo bench build

# Installs the system libraries Nebula links against (Debian/Ubuntu), when missing.
deps:
	@if [ "$$(uname)" = "Linux" ] && ! pkg-config --exists openblas 2>/dev/null; then \
		echo "installing libopenblas-dev and pkg-config"; \
		(apt-get update -qq || sudo apt-get update -qq) && \
		(apt-get install -y -qq libopenblas-dev pkg-config || sudo apt-get install -y -qq libopenblas-dev pkg-config); \
	fi

build: deps
	$(SWIFT) build -c release

# The test suite runs in release mode: numeric code is 10-50x slower in debug builds.
test: deps
	$(RELEASE_TEST)

bench: deps
	$(SWIFT) run -c release nebula-bench

demo: bench
